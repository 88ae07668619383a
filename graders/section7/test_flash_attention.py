"""Hidden graders for exercise 7.1 (tiled attention with online softmax): 20 points.

Oracles: torch's F.scaled_dot_product_attention and a logsumexp, both in float64
(exercises/support/section7/flash_attention.py), never the reference solution. Memory is
the operating system's count (llmkit.memory.peak_memory_of_call): the peak resident
memory of a fresh process that calls the learner's function once, minus that of
the same process without the learner's code, so "the N x N matrix never exists"
is measured, not assumed, and nothing in the learner's process can change it.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    CheckFailure,
    Draw,
    assert_close,
    assert_finite,
    describe_case,
    format_bytes,
    load_support,
    multihead_cases,
    peak_memory_of_call,
    poisoned_allocations,
    unchanged,
)

pytestmark = pytest.mark.exercise("7.1")
support = load_support("7.1")

BLOCKS = st.sampled_from([3, 5, 8, 16, 32, 64])


@st.composite
def attention_case(draw_st, max_n=70):
    """(B, H, N, D), block_q, block_k, causal, sm_scale and a value seed."""
    shape, causal, sm_scale, seed = draw_st(multihead_cases(max_heads=3, max_n=max_n, sm_scales=(0.05, 2.0)))
    return shape, draw_st(BLOCKS), draw_st(BLOCKS), causal, sm_scale, seed


def qkv(shape, dtype, seed, scale=1.0):
    rng = Draw(seed)
    return [rng.tensor(*shape, dtype=dtype, scale=scale) for _ in range(3)]


def describe(shape, block_q, block_k, causal, sm_scale):
    return describe_case(
        "", f"(B, H, N, D)={tuple(shape)}", block_q=block_q, block_k=block_k, causal=causal, sm_scale=sm_scale
    )


def unpack(result, name="flash_attention_torch"):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise CheckFailure(
            f"{name} should return a pair (out, lse), got {type(result).__name__}",
            hint="return out, lse",
        )
    return result


OUT_HINT = (
    "check that a new running maximum rescales both l and acc by exp(m_old - m_new), that "
    "out = acc / l at the end, that scores use sm_scale (default 1/sqrt(D)), and that the causal "
    "mask uses global indices (query q_start + i sees key k_start + j iff k_start + j <= q_start + i)"
)


def check_lse(lse, want, name):
    """assert_close, with a pointed message when the learner returned log2 or forgot the max."""
    if type(lse) is torch.Tensor and lse.shape == want.shape and lse.dtype == want.dtype:
        got = lse.detach().to(torch.float64)
        if torch.allclose(got, want.to(torch.float64) / math.log(2), rtol=1e-4, atol=1e-6):
            raise CheckFailure(
                f"{name}: your values are the logsumexp in base 2 (the expected value / ln 2)",
                hint="lse is the natural log: m + log(l) with torch.log and torch.exp, not log2/exp2",
            )
    assert_close(
        lse,
        want,
        name=name,
        hint="lse = m + log(l): the final running max plus the log of the final running sum, "
        "both measured on the scaled (and causally masked) scores; shape (B, H, N)",
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
    assert_close(out, want, name=f"out for {describe(shape, bq, bk, causal, sm_scale)}", hint=OUT_HINT)


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
    check_lse(lse, want, f"lse for {describe(shape, bq, bk, causal, sm_scale)}")


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
    assert_close(out, want_out, name=f"float32 out for {where}", hint="compute in q's dtype; " + OUT_HINT)
    check_lse(lse, want_lse, f"float32 lse for {where}")


@pytest.mark.points(1)
def test_single_query(impl, draw):
    """N = 1: one query, one key. out = v and lse = sm_scale * q.k."""
    q, k, v = (draw.tensor(2, 3, 1, 8, dtype=torch.float64) for _ in range(3))
    hint = "with N = 1 there is one tile of one key; tiles shorter than the block sizes must work"
    for causal in (False, True):
        out, lse = unpack(impl.flash_attention_torch(q, k, v, causal=causal))
        want_out, want_lse = support.attention_and_lse(q, k, v, causal)
        assert_close(out, want_out, name=f"out for N=1, causal={causal}", hint=hint)
        check_lse(lse, want_lse, f"lse for N=1, causal={causal}")


@pytest.mark.points(2)
def test_causal_long_sequence(impl, draw):
    """N = 389 (prime) with unequal blocks: many tiles straddle the diagonal differently."""
    shape, bq, bk = (1, 2, 389, 16), 64, 48
    q, k, v = (draw.tensor(*shape, dtype=torch.float64) for _ in range(3))
    out, lse = unpack(impl.flash_attention_torch(q, k, v, causal=True, block_q=bq, block_k=bk))
    want_out, want_lse = support.attention_and_lse(q, k, v, causal=True)
    where = describe(shape, bq, bk, True, None)
    assert_close(
        out,
        want_out,
        name=f"causal out for {where}",
        hint="mask with global indices, and do not skip the key tile that holds the diagonal",
    )
    check_lse(lse, want_lse, f"causal lse for {where}")


@pytest.mark.points(2)
def test_large_logits(impl, draw):
    """Scores around +-1000: exp overflows float64 without the running max (float32 at 88)."""
    shape = (1, 2, 50, 16)
    q, k, v = (draw.tensor(*shape, dtype=torch.float64, scale=s) for s in (30.0, 30.0, 1.0))
    hint = "subtract the running maximum inside exp(); start m at -inf, and exp(-inf) = 0 is fine"
    for causal in (False, True):
        out, lse = unpack(impl.flash_attention_torch(q, k, v, causal=causal, block_q=16, block_k=8))
        assert_finite(out, name="out with large logits", hint=hint)
        assert_finite(lse, name="lse with large logits", hint=hint)
        want_out, want_lse = support.attention_and_lse(q, k, v, causal)
        assert_close(out, want_out, name=f"float64 out with large logits, causal={causal}", hint=OUT_HINT)
        check_lse(lse, want_lse, f"float64 lse with large logits, causal={causal}")
        q32, k32, v32 = (t.to(torch.float32) for t in (q, k, v))
        out32, lse32 = unpack(impl.flash_attention_torch(q32, k32, v32, causal=causal, block_q=16, block_k=8))
        assert_finite(out32, name="float32 out with large logits", hint=hint)
        # float32 rounding of scores near 1000 moves near-one-hot weights: loose tolerance
        want32, want_lse32 = support.attention_and_lse(q32, k32, v32, causal)
        assert_close(out32, want32, name="float32 out with large logits", rtol=1e-3, atol=1e-3, hint=OUT_HINT)
        assert_close(lse32, want_lse32, name="float32 lse with large logits", rtol=1e-5, atol=1e-3)


@pytest.mark.points(1)
def test_sm_scale_is_used(impl, draw):
    q, k, v = (draw.tensor(2, 2, 24, 16, dtype=torch.float64) for _ in range(3))
    for sm_scale in (0.1, 1.3):
        out, lse = unpack(impl.flash_attention_torch(q, k, v, sm_scale=sm_scale, block_q=8, block_k=8))
        want_out, want_lse = support.attention_and_lse(q, k, v, sm_scale=sm_scale)
        hint = f"scores are sm_scale * q @ k^T; sm_scale={sm_scale} here (1/sqrt(D) only when None)"
        assert_close(out, want_out, name=f"out with sm_scale={sm_scale}", hint=hint)
        assert_close(lse, want_lse, name=f"lse with sm_scale={sm_scale}", hint=hint)


@pytest.mark.points(1)
def test_inputs_unchanged_and_every_element_written(impl, draw):
    q, k, v = (draw.tensor(2, 2, 37, 8) for _ in range(3))
    with unchanged(q, k, v, names=["q", "k", "v"]), poisoned_allocations():
        out, lse = unpack(impl.flash_attention_torch(q, k, v, causal=True, block_q=16, block_k=8))
    want_out, want_lse = support.attention_and_lse(q, k, v, causal=True)
    hint = (
        "torch.empty here returns NaN-filled tensors: every row of the last, shorter tile must be "
        "written (37 is not a multiple of 16 or 8)"
    )
    assert_finite(out, name="out (torch.empty filled with NaN)", hint=hint)
    assert_finite(lse, name="lse (torch.empty filled with NaN)", hint=hint)
    assert_close(out, want_out, name="causal out, N=37, block_q=16, block_k=8", hint=OUT_HINT)
    check_lse(lse, want_lse, "causal lse, N=37, block_q=16, block_k=8")


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
    assert_close(out, want_out, name=f"out at N={MEM_N}, causal={causal} (the call measured)", hint=OUT_HINT)
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
