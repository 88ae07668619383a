"""Mutant: the causal mask also hides the diagonal (query i sees keys 0..i-1).

Misconception: "the future" includes the current token. Query 0 then sees
nothing and every row attends to one key too few.
"""

_reference_sdpa = scaled_dot_product_attention


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    if is_causal:
        strict = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril(diagonal=-1)
        mask = strict if mask is None else strict & mask
    return _reference_sdpa(q, k, v, mask=mask, is_causal=False)
