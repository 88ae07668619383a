"""Mutant: boolean mask read as True = blocked.

Misconception: mixing up the two conventions in the wild (nn.MultiheadAttention's
attn_mask uses True = blocked; F.scaled_dot_product_attention uses True = attend).
"""

_reference_sdpa = scaled_dot_product_attention


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    return _reference_sdpa(q, k, v, mask=None if mask is None else ~mask, is_causal=is_causal)
