# target: section7/flash_attention.py
"""A naive attention written in numpy: the whole N x N score matrix, in numpy arrays
that a torch-level memory tracker never sees (nor anything done on other threads).
Its values are right, so it should keep the points a naive attention earns and lose
every memory point: the operating system counts numpy's memory too."""

import math

import numpy as np
import torch


def flash_attention_torch(q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64):
    scale = 1.0 / math.sqrt(q.shape[-1]) if sm_scale is None else sm_scale
    qn, kn, vn = (t.detach().cpu().numpy() for t in (q, k, v))
    scores = (qn @ np.swapaxes(kn, -1, -2)) * np.asarray(scale, dtype=qn.dtype)
    if causal:
        n = q.shape[-2]
        scores = np.where(np.triu(np.ones((n, n), dtype=bool), 1), -np.inf, scores)
    m = scores.max(axis=-1, keepdims=True)
    p = np.exp(scores - m)
    l_sum = p.sum(axis=-1, keepdims=True)
    out = (p / l_sum) @ vn
    lse = (m + np.log(l_sum))[..., 0]
    return torch.from_numpy(np.ascontiguousarray(out)), torch.from_numpy(np.ascontiguousarray(lse))
