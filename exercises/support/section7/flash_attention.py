"""Support for exercise 7.1 (tiled attention): torch's SDPA and a float64 logsumexp as the
oracle, naive attention for baselines, and the figure."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import assert_close


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


def check_one_call(impl, draw) -> None:
    """One small float64 call of the learner's flash_attention_torch, checked against SDPA's: the generated
    ban test (``test_no_library_shortcuts``, llmkit.plugin.bans) makes it after its static
    scan, with banned calls trapped, so code that does nothing earns nothing there."""
    q, k, v = (draw.tensor(1, 2, 12, 8, dtype=torch.float64) for _ in range(3))
    out, lse = impl.flash_attention_torch(q, k, v, block_q=4, block_k=4)
    want_out, want_lse = attention_and_lse(q, k, v)
    assert_close(out, want_out, name="out")
    assert_close(lse, want_lse, name="lse")


def _tile_map(ax, tiles: int, title: str) -> None:
    from matplotlib.colors import ListedColormap

    grid = np.zeros((tiles, tiles))
    for i in range(tiles):
        for j in range(tiles):
            grid[i, j] = 2 if j < i else (1 if j == i else 0)
    ax.imshow(grid, cmap=ListedColormap(["#f1f3f4", "#fbbc04", "#34a853"]), vmin=0, vmax=2)
    ax.set_xticks(range(tiles))
    ax.set_yticks(range(tiles))
    ax.set_xlabel("key tile")
    ax.set_ylabel("query tile")
    ax.set_title(title, fontsize=10)
    ax.text(tiles - 1, 0, "skipped", ha="right", va="top", fontsize=8)
    ax.text(0, tiles - 1, "no mask", ha="left", va="bottom", fontsize=8, color="white")


def figure() -> Figure:
    """Which score tiles causal attention computes, and the memory tiling saves."""
    fig, axes = new_figure(9.5, 3.6, ncols=2)
    _tile_map(axes[0], 8, "Causal: tiles under the diagonal need no mask,\nthe diagonal (yellow) does")
    n = np.array([512, 1024, 2048, 4096, 8192])
    block, bytes_per = 64, 4
    axes[1].plot(n, n * n * bytes_per / 2**20, marker="o", label="naive: the N × N scores")
    axes[1].plot(n, 3 * n * block * bytes_per / 2**20, marker="o", label=f"tiled: a few N × {block} tiles")
    axes[1].set_xscale("log", base=2)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("sequence length N")
    axes[1].set_ylabel("MiB per head (float32)")
    axes[1].set_title("Memory for the scores", fontsize=10)
    axes[1].legend(fontsize=8)
    return png(fig), "Which score tiles causal attention computes, and the memory tiling saves"
