"""Mutant: attention weights normalised over the query axis (dim=-2).

Misconception: "softmax over the scores" without asking which axis; each query's
weights over the keys must sum to 1.
"""

_reference_sdpa = scaled_dot_product_attention
_reference_softmax = softmax


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    global softmax
    softmax = lambda x, dim=-1: _reference_softmax(x, dim=-2)
    try:
        return _reference_sdpa(q, k, v, mask=mask, is_causal=is_causal)
    finally:
        softmax = _reference_softmax
