"""Public tests for exercise 7.2 (Triton attention kernel). Run: pytest exercises/section7

Without a GPU your kernel runs in Triton's interpreter on the CPU (float32 and
float16, short sequences; the whole file takes a few seconds). The fixed cases cover
the edges: N not a multiple of either block (partial last query block and key block),
causal with such an N, N a multiple of BLOCK_N but not of BLOCK_M, N = 1, D = 16, 32
and 64, float16, an sm_scale, more than one batch and head, large logits and a
transposed (B, N, H, D) layout; a few random shapes follow. When a check fails it names
the known mistake your output looks like. The hidden graders draw many more shapes, and
on a GPU add bfloat16, D = 128, long sequences and speed.

Out-of-bounds accesses: under the interpreter every tl.load and tl.store your kernel
makes with its mask on is checked against the launch's tensors (llmkit.triton_bounds),
so a load past row N - 1 is reported with the tensor, the element and the program,
even when -inf scores would hide its values. On a GPU, guarded buffers do the work
(exercises/support/section7/triton_attention.py): q, k, v, out and lse are views into
larger allocations, NaN around the inputs and a sentinel around the outputs.

Tolerances: float32 out rtol 1e-4 / atol 1e-5; float16 out atol 1e-2; lse (always
float32) rtol 1e-5 / atol 1e-4. The expected values come from torch in float64.
"""

import pytest
import torch
from hypothesis import Phase, given, settings

from llmkit.testing import (
    CheckFailure,
    Draw,
    as_plain_tensor,
    assert_close,
    describe_case,
    load_support,
    unchanged,
)

pytest.importorskip("triton", reason="exercise 7.2 needs triton: pip install -e '.[gpu]'")
pytestmark = pytest.mark.exercise("7.2")
support = load_support("7.2")
DEVICE = support.device()

OUT_HINT = (
    "NaN: a load of a row or key >= N reached the NaN around q, k, v, or a row was never stored "
    "(out= starts as NaN). Wrong values: rescale l_i and acc when the running max grows, out = acc / l_i, "
    "scores times sm_scale (and log2(e) with exp2), masks in global indices"
)
LSE_HINT = "lse = m_i + log(l_i), natural log (times ln 2 if you summed with exp2)"


def inputs(seed, shape, dtype=torch.float32, scale=1.0):
    rng = Draw(seed)
    return [rng.tensor(*shape, scale=scale).to(dtype=dtype, device=DEVICE) for _ in range(3)]


def launch(impl, q, k, v, causal, sm_scale, where):
    """Your wrapper on guarded copies of q, k, v and guarded out= / lse= buffers."""
    buffers = support.guarded_inputs(q, k, v)
    out, lse = support.guarded_outputs(q)
    with support.bounds_checked(where):
        impl.triton_attention(
            *(b.view for b in buffers), causal=causal, sm_scale=sm_scale, out=out.view, lse=lse.view
        )
    support.check_guards([*buffers, out, lse], where)
    return out.view, lse.view


def compare(impl, out, lse, q, k, v, causal, sm_scale, where, tolerance=None):
    """out and lse against torch in float64; on failure the known mistakes are tried."""
    out, lse = as_plain_tensor(out, "out"), as_plain_tensor(lse, "lse")
    if out.dtype != q.dtype:
        raise CheckFailure(f"out for {where}: dtype {out.dtype}, expected q's dtype {q.dtype}")
    want_out, want_lse = support.attention_and_lse(*(t.cpu().double() for t in (q, k, v)), causal, sm_scale)
    blocks = support.blocks_of(impl, q)
    lse_rtol, lse_atol = (1e-5, 1e-4) if tolerance is None else tolerance
    assert_close(  # lse first: some mistakes leave it right and only spoil out
        lse.cpu().double(),
        want_lse,
        name=f"lse for {where}",
        rtol=lse_rtol,
        atol=lse_atol,
        hint=LSE_HINT,
        suspects=support.suspects("lse", q, k, v, causal, sm_scale, blocks),
    )
    rtol, atol = tolerance or ((1e-4, 1e-5) if q.dtype == torch.float32 else (0.0, 1e-2))
    assert_close(
        out.cpu().double(),
        want_out,
        name=f"out for {where}",
        rtol=rtol,
        atol=atol,
        hint=OUT_HINT,
        suspects=support.suspects("out", q, k, v, causal, sm_scale, blocks),
    )


def check(impl, shape, dtype, causal, sm_scale, seed, scale=1.0, tolerance=None):
    q, k, v = inputs(seed, shape, dtype, scale)
    blocks = support.blocks_of(impl, q)
    where = describe_case(
        "",
        f"(B, H, N, D)={shape}",
        dtype,
        causal=causal,
        sm_scale=sm_scale,
        blocks=f"{blocks[0]} x {blocks[1]}",
    )
    out, lse = launch(impl, q, k, v, causal, sm_scale, where)
    compare(impl, out, lse, q, k, v, causal, sm_scale, where, tolerance)


F32, F16 = torch.float32, torch.float16
EDGES = {  # under the interpreter BLOCK_M = 32, BLOCK_N = 16
    "partial_last_blocks": ((1, 1, 45, 32), F32, False, None),  # 45 = 32 + 13 = 2 * 16 + 13
    "causal_partial_last_blocks": ((2, 1, 45, 16), F32, True, None),
    "n_multiple_of_block_n_only": ((1, 1, 48, 64), F16, False, 0.3),  # and D = 64, float16, sm_scale
    "causal_float16_one_block": ((1, 1, 20, 32), F16, True, 1.2),  # N between BLOCK_N and BLOCK_M
    "one_token": ((1, 2, 1, 16), F32, True, None),  # one row in a whole tile
}


@pytest.mark.parametrize("name", list(EDGES))
def test_edges(impl, name):
    shape, dtype, causal, sm_scale = EDGES[name]
    check(impl, shape, dtype, causal, sm_scale, seed=len(name))


def test_large_logits(impl):
    """Scores in the hundreds: exp overflows float32 at 88 (exp2 at 128) without the running
    maximum. float32 rounding of such scores moves near-one-hot weights: tolerance 1e-3."""
    for causal in (False, True):
        check(impl, (1, 1, 24, 16), F32, causal, None, seed=7, scale=20.0, tolerance=(1e-3, 1e-3))


def test_transposed_layout(impl):
    """q, k, v as the transposes of (B, N, H, D) tensors (a fused QKV projection gives
    them): the batch stride is not H times the head stride. N = 32 is a whole number of
    blocks under the interpreter (these inputs have no NaN guards); out and lse are guarded."""
    b, h, n, d = 2, 2, 32, 16
    rng = Draw(11)
    q, k, v = (rng.tensor(b, n, h, d).to(DEVICE).transpose(1, 2) for _ in range(3))
    where = f"q, k, v of shape {(b, h, n, d)} and strides {q.stride()} (transposed from (B, N, H, D)), causal"
    out, lse = support.guarded_outputs(q)
    with unchanged(q, k, v, names=["q", "k", "v"]), support.bounds_checked(where):
        impl.triton_attention(q, k, v, causal=True, out=out.view, lse=lse.view)
    support.check_guards([out, lse], where)
    compare(impl, out.view, lse.view, q, k, v, True, None, where)


@settings(max_examples=3, phases=[Phase.explicit, Phase.generate])  # no shrinking: the interpreter is slow
@given(case=support.attention_case(max_n=40, max_batch=1))
def test_random_shapes(impl, case):
    shape, causal, sm_scale, seed = case
    check(impl, shape, F32, causal, sm_scale, seed)
