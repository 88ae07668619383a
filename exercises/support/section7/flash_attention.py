"""Support for exercise 7.1 (tiled attention): torch's SDPA and a float64 logsumexp as the
oracle, the cases its tests draw, its named misconceptions, naive attention for
baselines, and the figure.

Every variant below computes what one mistaken implementation returns, in float64, from
torch's SDPA under another mask or scale, or from torch operations on the whole
(N x N) score matrix: what the mistaken tile loop would have summed, written without
a tile loop. None of them is a tiled attention.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import Misconception, Misconceptions, assert_close, describe_case, multihead_cases


def _scale(q, sm_scale):
    return 1.0 / math.sqrt(q.shape[-1]) if sm_scale is None else sm_scale


def attention_and_lse(q, k, v, causal: bool = False, sm_scale: float | None = None):
    """(out, lse) computed in float64 and returned in q's dtype.

    ``out`` is ``F.scaled_dot_product_attention``; ``lse`` is the natural-log
    logsumexp over the keys of the scaled (and causally masked) scores, (B, H, N).
    Materialises the N x N scores: for grader-side use at moderate N only.
    """
    q64, k64, v64 = (t.detach().to(torch.float64) for t in (q, k, v))
    scale = _scale(q, sm_scale)
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


# --- the cases the public tests and graders draw ----------------------------------

BLOCKS = st.sampled_from([3, 5, 8, 16, 32, 64])


@st.composite
def attention_case(draw_st, max_n=70, max_heads=3):
    """((B, H, N, D), block_q, block_k, causal, sm_scale, seed): one call of
    flash_attention_torch. N up to ``max_n``, blocks from 3 to 64 (so N is often not a
    multiple of them, and often smaller), sm_scale None or in [0.05, 2]."""
    shape, causal, sm_scale, seed = draw_st(
        multihead_cases(max_heads=max_heads, max_n=max_n, sm_scales=(0.05, 2.0))
    )
    return shape, draw_st(BLOCKS), draw_st(BLOCKS), causal, sm_scale, seed


def describe(shape, block_q, block_k, causal, sm_scale) -> str:
    """The case as failure messages name it."""
    where = f"(B, H, N, D)={tuple(shape)}"
    return describe_case("", where, block_q=block_q, block_k=block_k, causal=causal, sm_scale=sm_scale)


# --- what the mistakes compute -------------------------------------------------------
#
# Each helper returns (out, lse) in q's dtype. ``allowed`` is an (N, N) boolean matrix:
# key j takes part in query i's softmax. A query that ends up with no key at all gets
# what the loop gives it: acc / l = 0 / 0 = NaN, lse = m + log(l) = -inf + log(0) = -inf.


def _masked_scores(q, k, sm_scale, allowed):
    q64, k64 = q.detach().to(torch.float64), k.detach().to(torch.float64)
    scores = (q64 @ k64.transpose(-2, -1)) * _scale(q, sm_scale)
    return scores if allowed is None else scores.masked_fill(~allowed, float("-inf"))


def _dead_rows(scores):
    return torch.isneginf(scores).all(dim=-1)


def _from_pieces(q, numerator, total, row_max):
    """out = numerator / total and lse = row_max + log(total), in q's dtype."""
    return (numerator / total).to(q.dtype), (row_max + torch.log(total)).squeeze(-1).to(q.dtype)


def attention_with_allowed(q, k, v, allowed, sm_scale=None, *, dead_out=math.nan, dead_lse=-math.inf):
    """Attention (SDPA in float64) and its logsumexp where key j counts for query i iff
    ``allowed[i, j]``; rows with no allowed key get ``dead_out`` and ``dead_lse``."""
    if allowed is None:
        allowed = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool)
    scores = _masked_scores(q, k, sm_scale, allowed)
    dead = _dead_rows(scores)
    safe = allowed | dead[..., None]  # give dead rows a key, then overwrite them
    q64, k64, v64 = (t.detach().to(torch.float64) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q64, k64, v64, attn_mask=safe, scale=_scale(q, sm_scale))
    lse = torch.logsumexp(scores.masked_fill(dead[..., None], 0.0), dim=-1)
    out = out.masked_fill(dead[..., None], dead_out)
    lse = lse.masked_fill(dead, dead_lse)
    return out.to(q.dtype), lse.to(q.dtype)


def _causal(n):
    return torch.ones(n, n, dtype=torch.bool).tril()


def _tile_starts(index, block):
    return (index // block) * block


def running_max_per_key(scores, block_k):
    """For each (query i, key j): the running maximum m_i just after the key tile that holds
    j was folded in (tiles of ``block_k`` keys, in order): the cumulative maximum of the
    tiles' maxima. -inf scores are masked keys."""
    n = scores.shape[-1]
    starts = range(0, n, block_k)
    tile_max = torch.stack([scores[..., s : s + block_k].amax(dim=-1) for s in starts], dim=-1)
    running = tile_max.cummax(dim=-1).values
    sizes = torch.tensor([min(block_k, n - s) for s in starts])
    return running.repeat_interleave(sizes, dim=-1)


def _weights_under(scores, reference_max):
    """exp(scores - reference_max), 0 where the score is -inf (a masked key)."""
    safe_max = torch.where(torch.isfinite(reference_max), reference_max, torch.zeros_like(reference_max))
    return torch.where(torch.isneginf(scores), torch.zeros_like(scores), torch.exp(scores - safe_max))


def _no_rescale(q, k, v, causal, sm_scale, block_k, *, acc_rescaled: bool, sum_rescaled: bool):
    scores = _masked_scores(q, k, sm_scale, _causal(q.shape[-2]) if causal else None)
    row_max = scores.amax(dim=-1, keepdim=True)
    final = _weights_under(scores, row_max)
    stale = _weights_under(scores, running_max_per_key(scores, block_k))
    numerator = (final if acc_rescaled else stale) @ v.detach().to(torch.float64)
    total = (final if sum_rescaled else stale).sum(dim=-1, keepdim=True)
    return _from_pieces(q, numerator, total, row_max)


def no_rescale_acc(q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64):
    """acc keeps exp(s - m) of the maximum m it had when each key tile was added."""
    return _no_rescale(q, k, v, causal, sm_scale, block_k, acc_rescaled=False, sum_rescaled=True)


def no_rescale_sum(q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64):
    """l keeps exp(s - m) of the maximum m it had when each key tile was added."""
    return _no_rescale(q, k, v, causal, sm_scale, block_k, acc_rescaled=True, sum_rescaled=False)


def overflow_rows(q, k, v, causal=False, sm_scale=None, dtype=None):
    """(out, lse) of attention whose exp() never subtracts a maximum, computed in ``dtype``
    (q's by default): exact while a row's sum of exp(s) fits in the dtype; past that the sum
    is inf and out = inf / inf = NaN (lse inf); where every exp(s) underflows to 0,
    out = 0 / 0 = NaN (lse -inf). Rows near either edge may round either way."""
    out, lse = attention_and_lse(*(t.detach().to(torch.float64) for t in (q, k, v)), causal, sm_scale)
    info = torch.finfo(dtype or q.dtype)
    over = lse >= math.log(info.max)
    under = lse < math.log(info.smallest_normal * info.eps) - math.log(2) / 2
    out = out.masked_fill((over | under)[..., None], math.nan)
    lse = lse.masked_fill(over, math.inf).masked_fill(under, -math.inf)
    return out.to(q.dtype), lse.to(q.dtype)


def no_final_normalisation(q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64):
    """out = sum_j exp(s_j - max) v_j, never divided by the sum of the weights."""
    scores = _masked_scores(q, k, sm_scale, _causal(q.shape[-2]) if causal else None)
    row_max = scores.amax(dim=-1, keepdim=True)
    out = _weights_under(scores, row_max) @ v.detach().to(torch.float64)
    return out.to(q.dtype), torch.logsumexp(scores, dim=-1).to(q.dtype)


def causal_local_offset(q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64):
    """Every key tile a query tile visits (those starting at or before its last query) is
    masked with the same lower triangle, in indices local to the tile."""
    n = q.shape[-2]
    if not causal:
        return attention_with_allowed(q, k, v, None, sm_scale)
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    q_start, k_start = _tile_starts(i, block_q), _tile_starts(j, block_k)
    visited = k_start < torch.clamp(q_start + block_q, max=n)
    return attention_with_allowed(q, k, v, visited & (j - k_start <= i - q_start), sm_scale)


def causal_skips_diagonal_tile(q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64):
    """Causal key tiles start before the query tile's first query only: the tile that holds
    the diagonal is never visited (and the first query tile sees no key at all)."""
    n = q.shape[-2]
    if not causal:
        return attention_with_allowed(q, k, v, None, sm_scale)
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    q_start, k_start = _tile_starts(i, block_q), _tile_starts(j, block_k)
    return attention_with_allowed(q, k, v, (k_start < q_start) & (j <= i), sm_scale)


def causal_off_by_one(q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64):
    """Causal mask without the diagonal: query i sees keys 0..i-1, query 0 none (NaN)."""
    n = q.shape[-2]
    allowed = torch.ones(n, n, dtype=torch.bool).tril(-1) if causal else None
    return attention_with_allowed(q, k, v, allowed, sm_scale, dead_lse=math.nan)


def tail_tiles_dropped(q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64):
    """Tiles counted with n // block: the short last query tile is never computed (its
    rows keep what torch.empty held: NaN in the tests), and only whole key tiles are
    visited: ``range(stop // block_k)`` with stop = n, or the query tile's end if causal."""
    n = q.shape[-2]
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    q_end = _tile_starts(i, block_q) + block_q
    stop = q_end if causal else torch.full_like(i, n)
    allowed = j < _tile_starts(stop, block_k)
    if causal:
        allowed &= j <= i
    out, lse = attention_with_allowed(q, k, v, allowed, sm_scale)
    computed = torch.arange(n) < _tile_starts(torch.tensor(n), block_q)
    return out.masked_fill(~computed[:, None], math.nan), lse.masked_fill(~computed, math.nan)


def _lse_only(change):
    def variant(q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64):
        scores = _masked_scores(q, k, sm_scale, _causal(q.shape[-2]) if causal else None)
        return change(scores).to(q.dtype)

    return variant


def _out_and_lse(variant):
    """{'out': ..., 'lse': ...} variants from one function returning (out, lse)."""
    return {
        "out": lambda *args, **kwargs: variant(*args, **kwargs)[0],
        "lse": lambda *args, **kwargs: variant(*args, **kwargs)[1],
    }


MISCONCEPTIONS = Misconceptions(
    "exercises/section7/README.md",
    Misconception(
        "no_rescale_acc",
        "acc not rescaled when the maximum grows",
        "acc holds sums of exp(s - m_old) * v: multiply it by alpha = exp(m_old - m_new) "
        "before adding the new tile, exactly as you do for l",
        readme="The running maximum and the rescale",
        variants=_out_and_lse(no_rescale_acc),
    ),
    Misconception(
        "no_rescale_sum",
        "l not rescaled when the maximum grows",
        "l is a sum of exp(s - m_old): multiply it by alpha = exp(m_old - m_new) before "
        "adding the new tile's row sums, exactly as you do for acc",
        readme="The running maximum and the rescale",
        variants=_out_and_lse(no_rescale_sum),
    ),
    Misconception(
        "no_running_max",
        "exp() of the raw scores",
        "without the running maximum exp(s) overflows once a score passes 709 (float64) or 88 "
        "(float32), and inf / inf is NaN: keep m, subtract it inside exp(), rescale when it grows",
        readme="The running maximum and the rescale",
        variants=_out_and_lse(
            lambda q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64: overflow_rows(
                q, k, v, causal, sm_scale
            )
        ),
    ),
    Misconception(
        "no_final_normalisation",
        "out is acc, never divided by l",
        "the loop keeps the numerator (acc) and the denominator (l) apart; out = acc / l, once, at the end",
        readme="The running maximum and the rescale",
        variants={"out": lambda *a, **kw: no_final_normalisation(*a, **kw)[0]},
    ),
    Misconception(
        "causal_local_offset",
        "causal mask in tile-local indices",
        "query q_start + ii may see key k_start + jj iff k_start + jj <= q_start + ii: "
        "build the mask from global indices, not the same triangle in every tile",
        readme="The causal mask in tiles",
        variants=_out_and_lse(causal_local_offset),
    ),
    Misconception(
        "causal_skips_diagonal_tile",
        "the key tile holding the diagonal is skipped",
        "a query tile must visit every key tile that starts at or before its last query "
        "(k_start <= q_end - 1), the one on the diagonal included",
        readme="The causal mask in tiles",
        variants=_out_and_lse(causal_skips_diagonal_tile),
    ),
    Misconception(
        "causal_off_by_one",
        "the causal mask hides the diagonal",
        "query i sees keys 0..i, itself included: mask key j when j > i, not when j >= i",
        readme="The causal mask in tiles",
        variants=_out_and_lse(causal_off_by_one),
    ),
    Misconception(
        "tail_tiles_dropped",
        "the short last tile is dropped",
        "n // block counts whole tiles only: loop with range(0, n, block) and slice to "
        "min(start + block, n), so the last, shorter tile of queries and of keys is done too",
        readme="Short last tiles",
        variants=_out_and_lse(tail_tiles_dropped),
    ),
    Misconception(
        "sm_scale_ignored",
        "sm_scale ignored",
        "scores are sm_scale * q @ k^T; 1/sqrt(D) is only the default, when sm_scale is None",
        readme="The scale and the lse",
        variants=_out_and_lse(
            lambda q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64: attention_and_lse(
                q, k, v, causal
            )
        ),
    ),
    Misconception(
        "lse_log2",
        "lse in base 2",
        "lse is the natural-log logsumexp, m + log(l) with torch.log: the backward pass "
        "uses it as exp(s - lse)",
        readme="The scale and the lse",
        variants={"lse": _lse_only(lambda s: torch.logsumexp(s, dim=-1) / math.log(2))},
    ),
    Misconception(
        "lse_without_max",
        "lse without the running maximum",
        "l was summed as exp(s - m): the logsumexp of the row is m + log(l), not log(l)",
        readme="The scale and the lse",
        variants={"lse": _lse_only(lambda s: torch.logsumexp(s, dim=-1) - s.amax(dim=-1))},
    ),
    Misconception(
        "materialises_scores",
        "the N x N scores built up front",
        "tiling only the softmax keeps the (B, H, N, N) scores in memory, which is what "
        "FlashAttention avoids: compute each (block_q x block_k) tile of scores inside the loop",
        readme="How memory is measured",
        kind="memory",
    ),
)


def check_one_call(impl, draw) -> None:
    """One small float64 call of the learner's flash_attention_torch, checked against SDPA's: the generated
    ban test (``test_no_library_shortcuts``, llmkit.plugin.bans) makes it after its static
    scan, with banned calls trapped, so code that does nothing earns nothing there."""
    q, k, v = (draw.tensor(1, 2, 12, 8, dtype=torch.float64) for _ in range(3))
    out, lse = impl.flash_attention_torch(q, k, v, block_q=4, block_k=4)
    want_out, want_lse = attention_and_lse(q, k, v)
    assert_close(out, want_out, name="out")
    assert_close(lse, want_lse, name="lse")


# --- the figure ------------------------------------------------------------------------

FIG_N, FIG_D, FIG_BLOCK_Q, FIG_BLOCK_K = 40, 16, 8, 6


def _nan_rows(out) -> torch.Tensor:
    """(N,): the query rows whose output holds a NaN in any batch, head or column."""
    return torch.isnan(torch.as_tensor(out)).flatten(0, -3).any(dim=0).any(dim=-1)


def visited_tiles(impl, q, k, v, block_q, block_k, causal=True) -> np.ndarray:
    """(query tiles, key tiles): 1 where ``impl`` folded that key tile into that query
    tile, 0 where it did not, -1 where it cannot be told (the query tile's output is NaN
    already). Found from outside: one call per key tile with that tile's values set to
    NaN; the query tiles whose output turns NaN read it (a masked score is 0 weight, but
    0 * NaN is still NaN), the others skipped it."""
    n = q.shape[-2]
    kwargs = dict(causal=causal, block_q=block_q, block_k=block_k)
    nan_anyway = _nan_rows(impl.flash_attention_torch(q, k, v, **kwargs)[0])
    seen = np.zeros((-(-n // block_q), -(-n // block_k)), dtype=int)
    for t, k_start in enumerate(range(0, n, block_k)):
        poisoned = v.clone()
        poisoned[..., k_start : k_start + block_k, :] = math.nan
        turned_nan = _nan_rows(impl.flash_attention_torch(q, k, poisoned, **kwargs)[0]) & ~nan_anyway
        for s, q_start in enumerate(range(0, n, block_q)):
            rows = slice(q_start, q_start + block_q)
            seen[s, t] = -1 if nan_anyway[rows].all() else int(turned_nan[rows].any())
    return seen


def _tile_status(seen, n, block_q, block_k) -> np.ndarray:
    """0 skipped and not needed, 1 visited and fully visible, 2 visited on the diagonal,
    3 visited but all masked (could be skipped), 4 needed but skipped, 5 cannot be told
    (the output is NaN without any poison)."""
    status = np.zeros(seen.shape, dtype=int)
    for s, q_start in enumerate(range(0, n, block_q)):
        q_last = min(q_start + block_q, n) - 1
        for t, k_start in enumerate(range(0, n, block_k)):
            k_last = min(k_start + block_k, n) - 1
            needed, full = k_start <= q_last, k_last <= q_start
            if seen[s, t] < 0:
                status[s, t] = 5
            elif seen[s, t]:
                status[s, t] = 1 if full else (2 if needed else 3)
            else:
                status[s, t] = 4 if needed else 0
    return status


def figure(impl) -> Figure:
    """``impl``'s causal tile schedule (which key tiles each query tile visits, found by
    poisoning one key tile at a time), the running maximum and sum of one query row, and
    the learner's lse against torch's float64 logsumexp."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    gen = torch.Generator().manual_seed(11)
    n, d, bq, bk = FIG_N, FIG_D, FIG_BLOCK_Q, FIG_BLOCK_K
    q, k, v = (torch.randn(1, 1, n, d, generator=gen, dtype=torch.float64) for _ in range(3))
    out, lse = impl.flash_attention_torch(q, k, v, causal=True, block_q=bq, block_k=bk)
    out = torch.as_tensor(out).detach().to(torch.float64)
    lse = torch.as_tensor(lse).detach().to(torch.float64).reshape(-1)
    want_out, want_lse = attention_and_lse(q, k, v, causal=True)
    seen = visited_tiles(impl, q, k, v, bq, bk)
    status = _tile_status(seen, n, bq, bk)

    fig, axes = new_figure(13.5, 4.2, ncols=3)
    colours = ["#f1f3f4", "#34a853", "#fbbc04", "#fa903e", "#d93025", "#5f6368"]
    labels = [
        "skipped",
        "visited, no mask needed",
        "visited, on the diagonal",
        "visited, all masked",
        "needed, skipped!",
        "your output is NaN",
    ]
    grid = np.zeros((n, n), dtype=int)
    for i in range(n):
        for j in range(n):
            grid[i, j] = status[i // bq, j // bk]
    ax = axes[0]
    ax.imshow(grid, cmap=ListedColormap(colours), vmin=0, vmax=5, interpolation="nearest")
    for x in range(bk, n, bk):
        ax.axvline(x - 0.5, color="white", lw=1)
    for y in range(bq, n, bq):
        ax.axhline(y - 0.5, color="white", lw=1)
    ax.plot([-0.5, n - 0.5], [-0.5, n - 0.5], color="black", lw=0.8, ls="--")
    ax.set_xlabel(f"key (tiles of block_k = {bk})")
    ax.set_ylabel(f"query (tiles of block_q = {bq})")
    visits = int((seen > 0).sum())
    ax.set_title(f"Your causal tile schedule, N = {n}: {visits} of {seen.size} tiles visited", fontsize=10)
    present = sorted(set(status.flatten().tolist()) | {0, 1, 2})
    ax.legend(
        handles=[Patch(color=colours[c], label=labels[c]) for c in present],
        fontsize=7,
        loc="upper right",
        framealpha=0.9,
    )

    # One query row of the last query tile (it sees every key tile): the one whose maximum
    # grows most often. Its running max m and sum l after each key tile, from torch on the
    # scores it can see; their end point m + log(l) is the row's lse.
    scores = (q[0, 0] @ k[0, 0].T) / math.sqrt(d)
    running = running_max_per_key(scores.masked_fill(~_causal(n), -math.inf), bk)[:, ::bk]
    last_tile = range((n - 1) // bq * bq, n)
    row = max(last_tile, key=lambda i: (int((running[i, 1:] > running[i, :-1]).sum()), i))
    ms, ls = [], []
    for k_start in range(0, n, bk):
        seen_so_far = scores[row, : min(k_start + bk, row + 1)]
        m = seen_so_far.max()
        ms.append(m.item())
        ls.append(torch.exp(seen_so_far - m).sum().item())
    ax = axes[1]
    tiles = np.arange(1, len(ms) + 1)
    ax.step(tiles, ms, where="post", marker="o", color="#1a73e8", label="running max m")
    ax.step(tiles, np.array(ms) + np.log(ls), where="post", marker=".", color="#188038", label="m + log(l)")
    ax.axhline(lse[row].item(), color="#d93025", ls=":", label=f"your lse[{row}] = {lse[row].item():.4f}")
    ax.set_xlabel("key tiles folded in")
    ax.set_ylabel("score units")
    twin = ax.twinx()
    twin.step(tiles, ls, where="post", color="#e8710a", marker="s", ms=3, alpha=0.7, label="running sum l")
    twin.set_ylabel("running sum l (rescaled when m grows)", color="#e8710a", fontsize=8)
    ax.set_title(f"Query {row}: m and l over the key tiles", fontsize=10)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=7, loc="lower right")

    ax = axes[2]
    rows = np.arange(n)
    ax.plot(rows, want_lse.reshape(-1).numpy(), color="black", lw=1, label="float64 logsumexp")
    ax.scatter(rows, lse.numpy(), s=12, color="#1a73e8", label="your lse", zorder=3)
    for y in range(bq, n, bq):
        ax.axvline(y - 0.5, color="#dadce0", lw=0.8)
    lse_err = (lse - want_lse.reshape(-1)).abs().max().item()
    out_err = (out - want_out).abs().max().item()
    ax.set_title(f"max |lse error| = {lse_err:.2g}, max |out error| = {out_err:.2g}", fontsize=10)
    ax.set_xlabel("query row (grey: query tile edges)")
    ax.set_ylabel("lse")
    ax.legend(fontsize=7)
    return png(fig), (
        f"Your flash_attention_torch, causal, N = {n}: the key tiles each query tile visits, the running max "
        "and sum of one row, and your lse against a float64 logsumexp"
    )
