"""Mutant: paged_attention gathers and attends one sequence at a time, in a Python loop.

Misconception: each sequence has its own block table and length, so each needs its
own attention call. Right, but S small calls pay Python's and torch's overhead S
times; one gather of the whole table and a length mask do them all at once.
"""

import torch
import torch.nn.functional as F


def paged_attention(q, k_cache, v_cache, block_tables, context_lens, scale=None):
    block_size = k_cache.shape[1]
    out = torch.empty_like(q)
    for s in range(q.shape[0]):
        n = int(context_lens[s])
        blocks = block_tables[s, : -(-n // block_size)].long()
        keys = k_cache[blocks].flatten(0, 1)[:n].transpose(0, 1)  # (H, n, D)
        values = v_cache[blocks].flatten(0, 1)[:n].transpose(0, 1)
        out[s] = F.scaled_dot_product_attention(q[s][:, None, :], keys, values, scale=scale)[:, 0, :]
    return out
