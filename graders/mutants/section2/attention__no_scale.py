"""Mutant: scores are q @ k^T without the 1/sqrt(d) scale.

Misconception: the scale is cosmetic. Without it, dot products grow with d and
the softmax saturates, so the attention weights differ.
"""


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    scores = q @ k.transpose(-2, -1)
    allowed = None
    if is_causal:
        allowed = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
    if mask is not None:
        allowed = mask if allowed is None else allowed & mask
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return softmax(scores, dim=-1) @ v
