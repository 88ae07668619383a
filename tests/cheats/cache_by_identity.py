# target: section2/attention.py
"""Correct attention computed in slow Python loops (over (batch, head) slices and blocks
of 8 query rows), which remembers each answer by the identity of its inputs (``id()``,
kept alive so an id is never reused, and the tensors' version counters) and returns
the remembered answer when the same input objects come back. A speed test that times
repeated calls on the same held inputs sees only the first, slow call, and the
leaderboard would show a ratio far below 1. It should keep the points a slow but
correct attention earns and lose the speed point."""

from __future__ import annotations

import math

import torch
from torch import nn

_REMEMBERED: dict[tuple, tuple] = {}


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    row_max = x.detach().amax(dim=dim, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    exps = torch.exp(x - row_max)
    total = exps.sum(dim=dim, keepdim=True)
    return exps / torch.where(total == 0, torch.ones_like(total), total)


def _one_slice(q, k, v, allowed):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return softmax(scores, dim=-1) @ v


def _slow(q, k, v, mask, is_causal):
    lq, lk = q.shape[-2], k.shape[-2]
    allowed = None
    if is_causal:
        allowed = torch.ones(lq, lk, dtype=torch.bool).tril()
    if mask is not None:
        allowed = mask if allowed is None else allowed & mask
    shapes = [q.shape[:-2], k.shape[:-2], v.shape[:-2]] + (
        [allowed.shape[:-2]] if allowed is not None else []
    )
    batch = torch.broadcast_shapes(*shapes)
    qs, ks, vs = (t.expand(*batch, *t.shape[-2:]).reshape(-1, *t.shape[-2:]) for t in (q, k, v))
    masks = allowed.expand(*batch, lq, lk).reshape(-1, lq, lk) if allowed is not None else None
    slices = []
    for i in range(qs.shape[0]):  # one (batch, head) slice at a time, 8 query rows at a time
        rows = [
            _one_slice(qs[i, r : r + 8], ks[i], vs[i], masks[i, r : r + 8] if masks is not None else None)
            for r in range(0, lq, 8)
        ]
        slices.append(torch.cat(rows) if rows else qs.new_zeros(0, v.shape[-1]))
    return torch.stack(slices).reshape(*batch, lq, v.shape[-1])


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    key = (id(q), id(k), id(v), id(mask), bool(is_causal), q._version, k._version, v._version)
    hit = _REMEMBERED.get(key)
    if hit is not None and hit[0] is q and hit[1] is k and hit[2] is v and hit[3] is mask:
        return hit[4]
    out = _slow(q, k, v, mask, is_causal)
    if len(_REMEMBERED) > 16:
        _REMEMBERED.clear()
    _REMEMBERED[key] = (q, k, v, mask, out)  # the inputs stay alive: their ids are not reused
    return out


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, bias: bool = True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _split(self, x):
        b, length, _ = x.shape
        return x.view(b, length, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, query, key=None, value=None, mask=None, is_causal=False):
        key = query if key is None else key
        value = key if value is None else value
        q, k, v = (
            self._split(self.q_proj(query)),
            self._split(self.k_proj(key)),
            self._split(self.v_proj(value)),
        )
        out = scaled_dot_product_attention(q, k, v, mask=mask, is_causal=is_causal)
        b, _, length, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, length, self.d_model))
