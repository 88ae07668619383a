"""Public tests for exercise 7.2 (Triton attention kernel). Run: pytest exercises/section7

Without a GPU your kernel runs in Triton's interpreter on the CPU (float32 and
float16, short sequences; the whole file takes a few seconds). The hidden graders
draw random shapes, scales and dtypes, test N = 1, long causal diagonals and
transposed layouts, and on a GPU add bfloat16, D = 128, long sequences and speed.

Every launch here uses guarded buffers (exercises/support/section7/triton_attention.py): q, k, v, out
and lse are views into larger allocations, NaN around the inputs and a sentinel
around the outputs, so a load or store past row N - 1 is reported (the interpreter
itself never faults).

Tolerances: float32 out rtol 1e-4 / atol 1e-5; float16 out atol 1e-2; lse (always
float32) rtol 1e-5 / atol 1e-4. The expected values come from torch in float64.
"""

import pytest
import torch

from llmkit.testing import assert_close, assert_finite, load_support

pytest.importorskip("triton", reason="exercise 7.2 needs triton: pip install -e '.[gpu]'")
pytestmark = pytest.mark.exercise("7.2")
support = load_support("7.2")
DEVICE = support.device()


def inputs(draw, shape, dtype=torch.float32):
    return [draw.tensor(*shape).to(dtype=dtype, device=DEVICE) for _ in range(3)]


def launch(impl, q, k, v, causal=False, sm_scale=None):
    """Your wrapper on guarded copies of q, k, v and guarded out= / lse= buffers."""
    buffers = support.guarded_inputs(q, k, v)
    out, lse = support.guarded_outputs(q)
    impl.triton_attention(
        *(b.view for b in buffers), causal=causal, sm_scale=sm_scale, out=out.view, lse=lse.view
    )
    support.check_guards([*buffers, out, lse], f"shape {tuple(q.shape)}, causal={causal}")
    hint = "NaN: a load of a row or key >= N reached the NaN guard, or some rows were never stored"
    assert_finite(out.view, name="out", hint=hint)
    assert_finite(lse.view, name="lse", hint=hint)
    return out.view, lse.view


def check(impl, q, k, v, causal=False, sm_scale=None, hint=None):
    out, lse = launch(impl, q, k, v, causal, sm_scale)
    want_out, want_lse = support.attention_and_lse(*(t.cpu().double() for t in (q, k, v)), causal, sm_scale)
    assert out.dtype == q.dtype, f"out should have q's dtype {q.dtype}, got {out.dtype}"
    rtol, atol = (1e-4, 1e-5) if q.dtype == torch.float32 else (0.0, 1e-2)
    assert_close(out.cpu().double(), want_out, name="out", rtol=rtol, atol=atol, hint=hint)
    lse_hint = "lse = m_i + log(l_i), natural log (times ln 2 if you summed with exp2)"
    assert_close(lse.cpu().double(), want_lse, name="lse", rtol=1e-5, atol=1e-4, hint=lse_hint)


def test_matches_attention_float32(impl, draw):
    q, k, v = inputs(draw, (1, 2, 32, 16))
    check(impl, q, k, v, hint="running max m_i, running sum l_i, acc; out = acc / l_i")


def test_partial_last_block_and_causal(impl, draw):
    q, k, v = inputs(draw, (1, 1, 45, 32))
    check(impl, q, k, v, hint="45 is not a multiple of the blocks: keys >= N must score -inf")
    check(impl, q, k, v, causal=True, hint="causal: key j is visible to query i iff j <= i (global indices)")


def test_float16_and_sm_scale(impl, draw):
    q, k, v = inputs(draw, (2, 1, 24, 16), torch.float16)
    check(impl, q, k, v, causal=True, sm_scale=0.3, hint="scores are sm_scale * q . k; out in q's dtype")


def test_one_token(impl, draw):
    """N = 1: one query row in a whole tile; out = v, lse = sm_scale * q . k."""
    q, k, v = inputs(draw, (2, 2, 1, 16))
    check(impl, q, k, v, hint="with N = 1 every row but the first of the tile must be masked")
