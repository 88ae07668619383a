# target: section2/attention.py
"""Returns outputs too large to hold, deeply nested, or full of NaN."""

import torch


def softmax(x, dim=-1):
    return torch.full_like(x, float("nan"))


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    return torch.empty(2**29)  # 2 GiB of float32


class MultiHeadAttention(torch.nn.Module):
    def __init__(self, d_model, n_heads, bias=True):
        super().__init__()

    def forward(self, query, key, value, mask=None, is_causal=False):
        nested = []
        for _ in range(10_000):
            nested = [nested]
        return nested
