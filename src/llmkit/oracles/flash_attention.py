"""Oracles for exercise 7.1 (tiled attention): torch's SDPA and a float64 logsumexp."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def attention_and_lse(q, k, v, causal: bool = False, sm_scale: float | None = None):
    """(out, lse) computed in float64 and returned in q's dtype.

    ``out`` is ``F.scaled_dot_product_attention``; ``lse`` is the natural-log
    logsumexp over the keys of the scaled (and causally masked) scores, (B, H, N).
    Materialises the N x N scores: for grader-side use at moderate N only.
    """
    q64, k64, v64 = (t.detach().to(torch.float64) for t in (q, k, v))
    scale = 1.0 / math.sqrt(q.shape[-1]) if sm_scale is None else sm_scale
    out = F.scaled_dot_product_attention(q64, k64, v64, is_causal=causal, scale=scale)
    scores = (q64 @ k64.transpose(-2, -1)) * scale
    if causal:
        n_q, n_k = q.shape[-2], k.shape[-2]
        allowed = torch.ones(n_q, n_k, dtype=torch.bool).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    return out.to(q.dtype), lse.to(q.dtype)


def naive_attention(q, k, v, causal: bool = False, sm_scale: float | None = None):
    """Attention that materialises the N x N score matrix (for benchmarks and memory baselines)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if sm_scale is None else sm_scale
    scores = (q @ k.transpose(-2, -1)) * scale
    if causal:
        allowed = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    row_max = scores.amax(dim=-1, keepdim=True)
    weights = torch.exp(scores - row_max)
    total = weights.sum(dim=-1, keepdim=True)
    return (weights / total) @ v, (row_max + torch.log(total)).squeeze(-1)
