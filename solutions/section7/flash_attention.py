"""Exercise 7.1 — tiled attention with online softmax, in PyTorch (reference solution).

FlashAttention-2's loop order: an outer loop over query tiles, an inner loop over
key/value tiles. Each query tile keeps a running row maximum ``m_i``, a running sum
``l_i`` of exp(score - m_i) and an unnormalised output ``acc``; when a new tile raises
the maximum, ``l_i`` and ``acc`` are rescaled by exp(m_old - m_new). The largest
intermediates are (B, H, block_q, block_k) tiles; no N x N matrix ever exists.
"""

from __future__ import annotations

import math

import torch


def _mask_tile(s: torch.Tensor, q_start: int, k_start: int) -> torch.Tensor:
    """Causal mask for the score tile ``s`` of queries q_start.. and keys k_start..:
    query i may see key j iff j <= i, in global indices."""
    bq, bk = s.shape[-2:]
    if k_start + bk - 1 <= q_start:  # every key is at or before the tile's first query
        return s
    rows = torch.arange(q_start, q_start + bq, device=s.device)[:, None]
    cols = torch.arange(k_start, k_start + bk, device=s.device)[None, :]
    return s.masked_fill(cols > rows, float("-inf"))


def _key_tile_starts(q_start: int, q_end: int, n: int, block_k: int, causal: bool) -> range:
    """Key tiles a query tile needs. Causal: none that start after its last query (q_end - 1)."""
    return range(0, q_end if causal else n, block_k)


def _online_update(m_i, l_i, acc, s, v_tile):
    """Fold one tile of scores ``s`` (…, bq, bk) and values into the running (m_i, l_i, acc)."""
    m_new = torch.maximum(m_i, s.amax(dim=-1, keepdim=True))
    alpha = torch.exp(m_i - m_new)  # rescales what was summed under the old maximum; exp(-inf) = 0
    p = torch.exp(s - m_new)
    l_i = l_i * alpha + p.sum(dim=-1, keepdim=True)
    acc = acc * alpha + p @ v_tile
    return m_new, l_i, acc


def _finish(m_i, l_i, acc):
    """Normalise the output tile; the natural-log logsumexp of each row is m_i + log(l_i)."""
    return acc / l_i, (m_i + torch.log(l_i)).squeeze(-1)


def flash_attention_torch(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    sm_scale: float | None = None,
    block_q: int = 64,
    block_k: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    if q.dim() != 4 or k.shape != q.shape or v.shape != q.shape:
        raise ValueError(f"q, k, v must share one (B, H, N, D) shape, got {q.shape}, {k.shape}, {v.shape}")
    if block_q < 1 or block_k < 1:
        raise ValueError(f"block sizes must be positive, got block_q={block_q}, block_k={block_k}")
    b, h, n, d = q.shape
    scale = 1.0 / math.sqrt(d) if sm_scale is None else sm_scale
    out = torch.empty_like(q)
    lse = q.new_empty(b, h, n)
    for q_start in range(0, n, block_q):
        q_end = min(q_start + block_q, n)
        q_tile = q[:, :, q_start:q_end] * scale
        m_i = q.new_full((b, h, q_end - q_start, 1), float("-inf"))
        l_i = q.new_zeros(b, h, q_end - q_start, 1)
        acc = q.new_zeros(b, h, q_end - q_start, d)
        for k_start in _key_tile_starts(q_start, q_end, n, block_k, causal):
            k_end = min(k_start + block_k, n)
            s = q_tile @ k[:, :, k_start:k_end].transpose(-2, -1)
            if causal:
                s = _mask_tile(s, q_start, k_start)
            m_i, l_i, acc = _online_update(m_i, l_i, acc, s, v[:, :, k_start:k_end])
        out[:, :, q_start:q_end], lse[:, :, q_start:q_end] = _finish(m_i, l_i, acc)
    return out, lse
