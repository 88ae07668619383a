"""Hidden graders for exercise 7.1 (tiled attention with online softmax): 20 points.

Oracles: torch's F.scaled_dot_product_attention and a logsumexp, both in float64
(exercises/support/section7/flash_attention.py), never the reference solution. Memory is
the operating system's count (llmkit.memory.peak_memory_of_call): the peak resident
memory of a fresh process that calls the learner's function once, minus that of
the same process without the learner's code, so "the N x N matrix never exists"
is measured, not assumed, and nothing in the learner's process can change it.
"""

import pytest
import torch
from hypothesis import given, settings

from llmkit.testing import (
    CheckFailure,
    Draw,
    assert_close,
    format_bytes,
    load_support,
    peak_memory_of_call,
    poisoned_allocations,
    unchanged,
)

pytestmark = pytest.mark.exercise("7.1")
support = load_support("7.1")

mistakes = support.MISCONCEPTIONS
attention_case = support.attention_case  # shared with the public tests


def qkv(shape, dtype, seed, scale=1.0):
    rng = Draw(seed)
    return [rng.tensor(*shape, dtype=dtype, scale=scale) for _ in range(3)]


describe = support.describe


def unpack(result, name="flash_attention_torch"):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise CheckFailure(
            f"{name} should return a pair (out, lse), got {type(result).__name__}",
            hint="return out, lse",
        )
    return result


OUT_HINT = (
    "check that exp() is taken of score - m (m the running maximum), that a new maximum "
    "rescales both l and acc by exp(m_old - m_new), that out = acc / l at the end, that scores "
    "use sm_scale (default 1/sqrt(D)), and that the causal mask uses global indices (query "
    "q_start + i sees key k_start + j iff k_start + j <= q_start + i)"
)


def suspects(target, q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64):
    """The known mistakes' versions of ``target`` ("out" or "lse") on this call."""
    return mistakes.on(target, q, k, v, causal=causal, sm_scale=sm_scale, block_q=block_q, block_k=block_k)


def check_out(out, want, name, q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64, **tolerance):
    assert_close(
        out,
        want,
        name=name,
        hint=OUT_HINT,
        suspects=suspects("out", q, k, v, causal, sm_scale, block_q, block_k),
        **tolerance,
    )


def check_lse(lse, want, name, q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64, **tolerance):
    assert_close(
        lse,
        want,
        name=name,
        hint="lse = m + log(l): the final running max plus the natural log of the final running sum, "
        "both measured on the scaled (and causally masked) scores; shape (B, H, N)",
        suspects=suspects("lse", q, k, v, causal, sm_scale, block_q, block_k),
        **tolerance,
    )


# --- values (14 points) ------------------------------------------------------


@pytest.mark.points(4)
@settings(max_examples=35, deadline=None)
@given(case=attention_case())
def test_output_matches_sdpa_float64(impl, case):
    shape, bq, bk, causal, sm_scale, seed = case
    q, k, v = qkv(shape, torch.float64, seed)
    out, _ = unpack(
        impl.flash_attention_torch(q, k, v, causal=causal, sm_scale=sm_scale, block_q=bq, block_k=bk)
    )
    want, _ = support.attention_and_lse(q, k, v, causal, sm_scale)
    check_out(
        out, want, f"out for {describe(shape, bq, bk, causal, sm_scale)}", q, k, v, causal, sm_scale, bq, bk
    )


@pytest.mark.points(3)
@settings(max_examples=25, deadline=None)
@given(case=attention_case())
def test_lse_matches_float64_logsumexp(impl, case):
    shape, bq, bk, causal, sm_scale, seed = case
    q, k, v = qkv(shape, torch.float64, seed)
    _, lse = unpack(
        impl.flash_attention_torch(q, k, v, causal=causal, sm_scale=sm_scale, block_q=bq, block_k=bk)
    )
    _, want = support.attention_and_lse(q, k, v, causal, sm_scale)
    check_lse(
        lse, want, f"lse for {describe(shape, bq, bk, causal, sm_scale)}", q, k, v, causal, sm_scale, bq, bk
    )


@pytest.mark.points(2)
@settings(max_examples=15, deadline=None)
@given(case=attention_case())
def test_float32_matches(impl, case):
    shape, bq, bk, causal, sm_scale, seed = case
    q, k, v = qkv(shape, torch.float32, seed)
    out, lse = unpack(
        impl.flash_attention_torch(q, k, v, causal=causal, sm_scale=sm_scale, block_q=bq, block_k=bk)
    )
    want_out, want_lse = support.attention_and_lse(q, k, v, causal, sm_scale)
    where = describe(shape, bq, bk, causal, sm_scale)
    check_out(out, want_out, f"float32 out for {where}", q, k, v, causal, sm_scale, bq, bk)
    check_lse(lse, want_lse, f"float32 lse for {where}", q, k, v, causal, sm_scale, bq, bk)


@pytest.mark.points(1)
def test_single_query(impl, draw):
    """N = 1: one query, one key. out = v and lse = sm_scale * q.k."""
    q, k, v = (draw.tensor(2, 3, 1, 8, dtype=torch.float64) for _ in range(3))
    for causal in (False, True):
        out, lse = unpack(impl.flash_attention_torch(q, k, v, causal=causal))
        want_out, want_lse = support.attention_and_lse(q, k, v, causal)
        check_out(out, want_out, f"out for N=1, causal={causal} (one tile of one key)", q, k, v, causal)
        check_lse(lse, want_lse, f"lse for N=1, causal={causal} (one tile of one key)", q, k, v, causal)


@pytest.mark.points(2)
def test_causal_long_sequence(impl, draw):
    """N = 389 (prime) with unequal blocks: many tiles straddle the diagonal differently."""
    shape, bq, bk = (1, 2, 389, 16), 64, 48
    q, k, v = (draw.tensor(*shape, dtype=torch.float64) for _ in range(3))
    out, lse = unpack(impl.flash_attention_torch(q, k, v, causal=True, block_q=bq, block_k=bk))
    want_out, want_lse = support.attention_and_lse(q, k, v, causal=True)
    where = describe(shape, bq, bk, True, None)
    check_out(out, want_out, f"causal out for {where}", q, k, v, True, None, bq, bk)
    check_lse(lse, want_lse, f"causal lse for {where}", q, k, v, True, None, bq, bk)


@pytest.mark.points(2)
def test_large_logits(impl, draw):
    """Scores around +-1000: exp overflows float64 without the running max (float32 at 88)."""
    shape = (1, 2, 50, 16)
    q, k, v = (draw.tensor(*shape, dtype=torch.float64, scale=s) for s in (30.0, 30.0, 1.0))
    for causal in (False, True):  # NaN or inf: assert_close says where, the suspects say why
        out, lse = unpack(impl.flash_attention_torch(q, k, v, causal=causal, block_q=16, block_k=8))
        want_out, want_lse = support.attention_and_lse(q, k, v, causal)
        name = f"with large logits, causal={causal}, block_q=16, block_k=8"
        check_out(out, want_out, f"float64 out {name}", q, k, v, causal, None, 16, 8)
        check_lse(lse, want_lse, f"float64 lse {name}", q, k, v, causal, None, 16, 8)
        q32, k32, v32 = (t.to(torch.float32) for t in (q, k, v))
        out32, lse32 = unpack(impl.flash_attention_torch(q32, k32, v32, causal=causal, block_q=16, block_k=8))
        # float32 rounding of scores near 1000 moves near-one-hot weights: loose tolerance
        want32, want_lse32 = support.attention_and_lse(q32, k32, v32, causal)
        check_out(
            out32, want32, f"float32 out {name}", q32, k32, v32, causal, None, 16, 8, rtol=1e-3, atol=1e-3
        )
        check_lse(
            lse32, want_lse32, f"float32 lse {name}", q32, k32, v32, causal, None, 16, 8, rtol=1e-5, atol=1e-3
        )


@pytest.mark.points(1)
def test_sm_scale_is_used(impl, draw):
    q, k, v = (draw.tensor(2, 2, 24, 16, dtype=torch.float64) for _ in range(3))
    for sm_scale in (0.1, 1.3):
        out, lse = unpack(impl.flash_attention_torch(q, k, v, sm_scale=sm_scale, block_q=8, block_k=8))
        want_out, want_lse = support.attention_and_lse(q, k, v, sm_scale=sm_scale)
        check_out(out, want_out, f"out with sm_scale={sm_scale}", q, k, v, False, sm_scale, 8, 8)
        check_lse(lse, want_lse, f"lse with sm_scale={sm_scale}", q, k, v, False, sm_scale, 8, 8)


@pytest.mark.points(1)
def test_inputs_unchanged_and_every_element_written(impl, draw):
    q, k, v = (draw.tensor(2, 2, 37, 8) for _ in range(3))
    with unchanged(q, k, v, names=["q", "k", "v"]), poisoned_allocations():
        out, lse = unpack(impl.flash_attention_torch(q, k, v, causal=True, block_q=16, block_k=8))
    want_out, want_lse = support.attention_and_lse(q, k, v, causal=True)
    # torch.empty returned NaN-filled tensors: rows never written are NaN, and assert_close says so
    where = "N=37, causal, block_q=16, block_k=8 (37 is not a multiple of 16 or 8; torch.empty gave NaN)"
    check_out(out, want_out, f"out for {where}", q, k, v, True, None, 16, 8)
    check_lse(lse, want_lse, f"lse for {where}", q, k, v, True, None, 16, 8)


# --- memory (3 points) -------------------------------------------------------

# One call in a fresh process (sandboxed under --sandbox), its peak RSS from the OS
# minus that of the same harness and inputs without the learner's code. At N = 4096,
# D = 64, one head, float32, one N x N score matrix is 64 MiB. Measured here (2
# cores): the reference adds 5-6 MiB (1 MiB of it the output), a naive attention
# ~195 MiB in torch or numpy, the mutant that materialises the scores ~130 MiB.
MEM_SHAPE, MEM_BLOCK = (1, 1, 4096, 64), 64
MEM_N = MEM_SHAPE[2]
MEM_BUDGET = MEM_N * MEM_N  # bytes: one N x N boolean mask, a quarter of one float32 score matrix
TILED_HINT = (
    "compute scores one (block_q x block_k) tile at a time and never keep them all: the "
    "running m, l and acc are all a query tile needs"
)


def measured(impl, impl_files, exercise, draw, causal):
    """The memory the call added, after checking the output of the very call measured."""
    kwargs = {"causal": causal, "block_q": MEM_BLOCK, "block_k": MEM_BLOCK}
    probe = [draw.tensor(1, 1, 8, 4) for _ in range(3)]
    unpack(impl.flash_attention_torch(*probe, **kwargs))  # a stub stops here, "not started"
    q, k, v = (draw.tensor(*MEM_SHAPE) for _ in range(3))
    used = peak_memory_of_call(
        impl_files, "flash_attention_torch", [q, k, v], kwargs, exercise=exercise.id, banned=exercise.banned
    )
    out, _ = unpack(used.output)  # the output must be right; lse has its own tests
    want_out, _ = support.attention_and_lse(q, k, v, causal)
    check_out(
        out,
        want_out,
        f"out at N={MEM_N}, causal={causal} (the call measured)",
        q,
        k,
        v,
        causal,
        None,
        *[MEM_BLOCK] * 2,
    )
    return used


def check_budget(used, causal, hint):
    if used.peak_bytes > MEM_BUDGET:
        raise CheckFailure(
            f"too much memory: at N={MEM_N}, D={MEM_SHAPE[3]}, one head, float32, causal={causal}, "
            f"blocks of {MEM_BLOCK}, "
            f"your call added {format_bytes(used.peak_bytes)} to the peak resident memory of its process "
            f"({format_bytes(used.call_peak_rss)} against {format_bytes(used.control_peak_rss)} for the "
            f"same process without your code; the operating system's count): "
            f"{used.peak_bytes / MEM_BUDGET:.1f}x the budget of {format_bytes(MEM_BUDGET)}. "
            f"One {MEM_N}x{MEM_N} float32 score matrix is {format_bytes(4 * MEM_N * MEM_N)}, a boolean mask "
            f"{format_bytes(MEM_N * MEM_N)}; a tiled loop adds about 6 MiB (1 MiB of it the output)",
            hint=hint,
        )


@pytest.mark.points(2)
def test_peak_memory_is_tiled(impl, impl_files, exercise, draw):
    """Non-causal: no N x N scores, in torch, numpy or anything else."""
    check_budget(measured(impl, impl_files, exercise, draw, causal=False), False, TILED_HINT)


@pytest.mark.points(1)
def test_causal_peak_memory_is_tiled(impl, impl_files, exercise, draw):
    """Causal: no N x N scores and no N x N causal mask either."""
    hint = (
        "build the causal mask per tile from global indices (torch.arange(q_start, q_end) against "
        "torch.arange(k_start, k_end)), never as an N x N matrix; " + TILED_HINT
    )
    check_budget(measured(impl, impl_files, exercise, draw, causal=True), True, hint)


# --- rules (1 point) -----------------------------------------------------------
# test_no_library_shortcuts, which the plugin generates from the catalog's `banned`
# (llmkit.plugin.bans; its call is support.check_one_call).
