"""Mutant: correct attention computed one query vector at a time in Python loops.

Misconception: a loop is as good as a matrix product. The numbers are right,
but every query pays Python and dispatch overhead; batched matmuls do all
queries of all heads at once.
"""

_reference_sdpa = scaled_dot_product_attention


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    lq, lk = q.shape[-2], k.shape[-2]
    allowed = torch.ones(lq, lk, dtype=torch.bool)
    if is_causal:
        allowed = allowed.tril()
    if mask is not None:
        allowed = allowed & mask
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], allowed.shape[:-2])
    q, k, v = (t.expand(*batch, *t.shape[-2:]).reshape(-1, *t.shape[-2:]) for t in (q, k, v))
    allowed = allowed.expand(*batch, lq, lk).reshape(-1, lq, lk)
    rows = [
        torch.stack([_reference_sdpa(q[b, i], k[b], v[b], mask=allowed[b, i]) for i in range(lq)])
        for b in range(q.shape[0])
    ]
    return torch.stack(rows).reshape(*batch, lq, v.shape[-1])
