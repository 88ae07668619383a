# target: section2/attention.py
"""Allocates memory until something gives."""

import torch


def softmax(x, dim=-1):
    hoard = []
    while True:
        hoard.append(torch.ones(2**26))  # 256 MiB a step


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    return bytearray(2**40)


MultiHeadAttention = softmax
