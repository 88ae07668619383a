"""Mutant: a Python loop over query rows, each row batched over every head.

Misconception: batching heads is vectorised enough. Each of the Lq rows still pays
Python and dispatch overhead; one batched product does all rows at once.
"""

_reference_sdpa = scaled_dot_product_attention


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    lq, lk = q.shape[-2], k.shape[-2]
    allowed = torch.ones(lq, lk, dtype=torch.bool)
    if is_causal:
        allowed = allowed.tril()
    if mask is not None:
        allowed = allowed & mask
    rows = [_reference_sdpa(q[..., i : i + 1, :], k, v, mask=allowed[..., i : i + 1, :]) for i in range(lq)]
    return torch.cat(rows, dim=-2)
