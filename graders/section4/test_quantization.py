"""Hidden graders for exercise 4.2 (Quantization for small models): 20 points, the generated
ban test's included.

Oracles (exercises/support/section4/quantization.py), never the reference solution: torch's
``fake_quantize_per_channel_affine`` fed with the closed-form scales and zero points for the
codes, numpy's ``packbits`` / ``unpackbits`` for the 4-bit layout, float64 arithmetic for
dequantising and the matmul. Memory is the operating system's count
(llmkit.memory.peak_memory_of_call): the peak resident memory of a fresh process that calls
the learner's w4_matmul once, minus that of the same process without the learner's code.
"""

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    CheckFailure,
    Draw,
    as_plain_tensor,
    assert_close,
    assert_finite,
    format_bytes,
    load_support,
    peak_memory_of_call,
    unchanged,
)

pytestmark = pytest.mark.exercise("4.2")
support = load_support("4.2")
mistakes = support.MISCONCEPTIONS

ALL_BITS = (2, 3, 4, 5, 6, 7, 8)


def dequantized(impl, kind, out):
    return impl.dequantize_absmax(*out) if kind == "absmax" else impl.dequantize_zeropoint(*out)


# --- cheap checks first: a mutant stops at its first lost point ----------------------------


@pytest.mark.points(1)
def test_invalid_arguments_raise(impl, draw):
    W = draw.tensor(4, 8)
    support.check_quantized(
        impl.quantize_absmax(W), support.absmax_oracle(W), W, kind="absmax", what="absmax"
    )
    for fn in (impl.quantize_absmax, impl.quantize_zeropoint):
        for kwargs in ({"bits": 1}, {"bits": 9}, {"clip_ratio": 0.0}, {"clip_ratio": 1.5}):
            with pytest.raises(ValueError):
                fn(W, **kwargs)
    for bad_w, group_size in ((W, 3), (W, 16), (W, 0), (draw.tensor(2, 4, 8), 4)):
        with pytest.raises(ValueError):
            impl.quantize_groupwise_int4(bad_w, group_size)
    packed, scales, zeros = support.random_packed(4, 8, 4, torch.float32, 1)
    with pytest.raises(ValueError):
        impl.w4_matmul(draw.tensor(2, 6), packed, scales, zeros, 4)


@pytest.mark.points(1)
def test_ties_round_half_to_even(impl):
    for dtype in (torch.float32, torch.float64):
        for bits in ALL_BITS:
            W = support.tie_tensor(bits, dtype)
            support.check_quantized(
                impl.quantize_absmax(W, bits),
                support.absmax_oracle(W, bits),
                W,
                kind="absmax",
                what=f"quantize_absmax({W.tolist()[0]}, bits={bits}) {dtype} (scale 1: exact ties)",
                hint="torch.round rounds half to even",
                suspects=mistakes.on("quantize_absmax", W, bits),
                tie_window=0.0,
            )
            W = support.zeropoint_tie_tensor(bits, dtype)  # scale 1, zero point round(2.5) = 2
            support.check_quantized(
                impl.quantize_zeropoint(W, bits),
                support.zeropoint_oracle(W, bits),
                W,
                kind="zeropoint",
                what=f"quantize_zeropoint({W.tolist()[0]}, bits={bits}) {dtype} (scale 1: exact ties)",
                hint="round half to even, for the zero point as for the codes",
                suspects=mistakes.on("quantize_zeropoint", W, bits),
                tie_window=0.0,
            )
        # groups of 4 with ranges [-1.5, 13.5] and [-0.5, 14.5]: scale 1, zero points round(1.5) = 2
        # and round(0.5) = 0, ties inside
        W = torch.tensor([[-1.5, 13.5, 0.5, 2.5, -0.5, 14.5, 4.5, 6.5]], dtype=dtype)
        support.check_quantized(
            impl.quantize_groupwise_int4(W, 4),
            support.groupwise_oracle(W, 4),
            W,
            kind="groupwise",
            what=f"quantize_groupwise_int4({W.tolist()[0]}, group_size=4) {dtype} (scale 1: exact ties)",
            suspects=mistakes.on("quantize_groupwise_int4", W, 4),
            tie_window=0.0,
        )


@pytest.mark.points(1)
def test_all_zero_slices_and_groups(impl, draw):
    W = draw.tensor(5, 8, dtype=torch.float64)
    W[1] = 0.0  # an all-zero row: an all-zero channel and two all-zero groups
    W[3, 4:] = 0.0  # one all-zero group of 4
    for kind, fn in (("absmax", "quantize_absmax"), ("zeropoint", "quantize_zeropoint")):
        for axis in (0, None):
            args = (torch.zeros_like(W), 4, axis) if axis is None else (W, 4, axis)
            out = getattr(impl, fn)(*args)
            scale = as_plain_tensor(out[1], "scale")
            if (scale == 0).any():
                raise mistakes.failure(
                    "zero_scale_for_zero_slice",
                    f"{fn}(W, bits=4, axis={axis}): an all-zero slice got scale 0",
                )
            support.check_quantized(
                out,
                getattr(support, f"{kind}_oracle")(*args),
                args[0],
                kind=kind,
                what=f"{fn}(W with all-zero slices, bits=4, axis={axis})",
                suspects=mistakes.on(fn, *args),
            )
            back = dequantized(impl, kind, out)
            assert_finite(back, name=f"{fn} and back, with all-zero slices")
            zeros = args[0] == 0
            assert_close(
                as_plain_tensor(back)[zeros],
                torch.zeros(int(zeros.sum()), dtype=torch.float64),
                name=f"the zeros of W after {fn}(axis={axis}) and back",
            )
    packed, scales, zeros = impl.quantize_groupwise_int4(W, 4)
    scales = as_plain_tensor(scales, "scales")
    if (scales == 0).any():
        raise mistakes.failure(
            "zero_scale_for_zero_slice", "quantize_groupwise_int4: an all-zero group got scale 0"
        )
    support.check_quantized(
        (packed, scales, zeros),
        support.groupwise_oracle(W, 4),
        W,
        kind="groupwise",
        what="quantize_groupwise_int4(W (5, 8) with all-zero groups, group_size=4)",
        suspects=mistakes.on("quantize_groupwise_int4", W, 4),
    )
    x = draw.tensor(3, 8, dtype=torch.float64)
    out = impl.w4_matmul(x, packed, scales, zeros, 4)
    assert_finite(out, name="w4_matmul with all-zero groups")


@pytest.mark.points(1)
@settings(max_examples=15)
@given(rows=st.integers(1, 4), groups=st.integers(1, 6), seed=SEEDS)
@example(rows=1, groups=1, seed=0)
def test_packing_order(impl, rows, groups, seed):
    # Each group of 4 holds a 0 and a 15 (lo = 0, hi = 15: scale 1, zero point 0): the codes
    # are the weights themselves, so the bytes are known.
    gen = Draw(seed).generator
    codes = torch.randint(0, 16, (rows, 4 * groups), generator=gen)
    codes[:, 0::4], codes[:, 1::4] = 0, 15
    shuffle = torch.cat([torch.randperm(4, generator=gen) + 4 * k for k in range(groups)])
    codes = codes[:, shuffle]  # the 0 and the 15 anywhere within their group
    W = codes.to(torch.float32)
    packed = support.pack_nibbles(codes)
    support.check_quantized(
        impl.quantize_groupwise_int4(W, 4),
        (packed, torch.ones(rows, groups), torch.zeros(rows, groups, dtype=torch.int32)),
        W,
        kind="groupwise",
        what=f"quantize_groupwise_int4(integer W {tuple(W.shape)}, group_size=4) (scale 1: codes = W)",
        hint="byte j = q[2j] | (q[2j + 1] << 4)",
        suspects=mistakes.on("quantize_groupwise_int4", W, 4),
    )
    ones, no_zeros = torch.ones(rows, groups), torch.zeros(rows, groups, dtype=torch.int32)
    assert_close(
        impl.dequantize_groupwise_int4(packed, ones, no_zeros, 4),
        W,
        name="dequantize_groupwise_int4 of known bytes (scale 1, zero 0: the codes themselves)",
        suspects=mistakes.on("dequantize_groupwise_int4", packed, ones, no_zeros, 4),
    )


# --- the quantizers against torch's fake quantizer (6 points) -------------------------------


@pytest.mark.points(3)
@settings(max_examples=60)
@given(case=support.quant_case(max_dims=4, bits=ALL_BITS))
def test_absmax_matches_torch(impl, case):
    W = case.tensor()
    args = (W, case.bits, case.axis, case.clip_ratio)
    with unchanged(W, names=["W"]):
        out = impl.quantize_absmax(*args)
    support.check_quantized(
        out,
        support.absmax_oracle(*args),
        W,
        kind="absmax",
        what=case.describe("quantize_absmax"),
        hint="scale = amax * clip_ratio / (2^(bits-1) - 1), shaped to broadcast; codes clamped, int8",
        suspects=mistakes.on("quantize_absmax", *args),
    )


@pytest.mark.points(3)
@settings(max_examples=60)
@given(case=support.quant_case(max_dims=4, bits=ALL_BITS))
def test_zeropoint_matches_torch(impl, case):
    W = case.tensor()
    args = (W, case.bits, case.axis, case.clip_ratio)
    with unchanged(W, names=["W"]):
        out = impl.quantize_zeropoint(*args)
    support.check_quantized(
        out,
        support.zeropoint_oracle(*args),
        W,
        kind="zeropoint",
        what=case.describe("quantize_zeropoint"),
        hint="the range includes 0; zero point int32 in [0, 2^bits - 1]; codes clamped, uint8",
        suspects=mistakes.on("quantize_zeropoint", *args),
    )


@pytest.mark.points(2)
@settings(max_examples=40)
@given(case=support.quant_case(max_dims=3, bits=ALL_BITS), zero_at=st.integers(0, 10**6))
def test_round_trip_within_half_a_step_and_zero_is_exact(impl, case, zero_at):
    """Dequantising is the closed form; |W - dequantize(quantize(W))| <= scale / 2 inside the
    (clipped) range; the weight 0 comes back exactly in zero-point mode."""
    W = case.tensor()
    W.view(-1)[zero_at % W.numel()] = 0.0
    args = (W, case.bits, case.axis, case.clip_ratio)
    q, scale = support.absmax_oracle(*args)
    assert_close(impl.dequantize_absmax(q, scale), q.to(W.dtype) * scale, name="dequantize_absmax(q, scale)")
    q, scale, zero = support.zeropoint_oracle(*args)
    assert_close(
        impl.dequantize_zeropoint(q, scale, zero),
        ((q.to(torch.float64) - zero) * scale.to(torch.float64)).to(W.dtype),
        name="dequantize_zeropoint(q, scale, zero_point)",
        hint="subtract the zero point in a signed type: uint8 wraps around",
    )
    eps = torch.finfo(W.dtype).eps
    for kind, fn in (("absmax", "quantize_absmax"), ("zeropoint", "quantize_zeropoint")):
        out = getattr(impl, fn)(*args)
        back = as_plain_tensor(dequantized(impl, kind, out), "dequantized").to(torch.float64)
        step = support._expand_groups(as_plain_tensor(out[1], "scale").to(torch.float64), W.shape)
        W64 = W.to(torch.float64)
        if kind == "absmax":
            top = step * support.absmax_qmax(case.bits)
            inside = W64.abs() <= top
        else:
            zp = support._expand_groups(as_plain_tensor(out[2], "zero_point").to(torch.float64), W.shape)
            inside = (W64 >= -zp * step) & (W64 <= (support.zeropoint_qmax(case.bits) - zp) * step)
        error = (back - W64).abs()
        bound = step / 2 + 8 * eps * (W64.abs() + step * 2**case.bits)
        bad = inside & (error > bound)
        if bad.any():
            i = tuple(int(j) for j in bad.nonzero()[0])
            raise CheckFailure(
                f"{case.describe(fn)} and back: {int(bad.sum())} weights inside the range are off by more "
                f"than half a step. First at {i}: W = {W64[i].item():.8g}, back {back[i].item():.8g}, "
                f"step (scale) {step[i].item():.6g}",
                hint="round to the nearest code; dequantise with the same scale (and zero point)",
            )
        if kind == "zeropoint":
            assert_close(
                back[W == 0],
                torch.zeros(int((W == 0).sum()), dtype=torch.float64),
                name=f"{case.describe(fn)}: the weight 0 after quantizing and back (must be exact)",
                hint="widen the range to include 0, so that the zero point is a code",
            )


# --- group-wise int4 and the 4-bit matmul (5 points) -----------------------------------------


@st.composite
def grader_group_case(draw_st):
    """Any row count (not only multiples of the group), groups of 2 to 32, 1 to 5 per row."""
    g = draw_st(st.sampled_from([2, 4, 6, 8, 16, 32]))
    out_f, n_groups = draw_st(st.integers(1, 9)), draw_st(st.integers(1, 5))
    return support.GroupCase(out_f, g * n_groups, g, draw_st(FLOAT_DTYPES), draw_st(SEEDS))


@pytest.mark.points(3)
@settings(max_examples=40)
@given(case=grader_group_case(), sign=st.sampled_from(["mixed", "mixed", "positive"]))
def test_groupwise_int4_matches_the_oracle(impl, case, sign):
    W = case.weight()
    if sign == "positive":
        W = W.abs() + 0.01
    with unchanged(W, names=["W"]):
        out = impl.quantize_groupwise_int4(W, case.group_size)
    support.check_quantized(
        out,
        support.groupwise_oracle(W, case.group_size),
        W,
        kind="groupwise",
        what=case.describe() + (" (positive weights)" if sign == "positive" else ""),
        hint="groups along the input features of each row; zero-point codes at 4 bits; low nibble first",
        suspects=mistakes.on("quantize_groupwise_int4", W, case.group_size),
    )


@pytest.mark.points(2)
@settings(max_examples=25)
@given(case=grader_group_case(), lead=st.lists(st.integers(1, 3), max_size=2))
def test_dequantize_and_w4_matmul(impl, case, lead):
    out_f, in_f, g, dtype, seed = case
    packed, scales, zeros = support.random_packed(out_f, in_f, g, dtype, seed)
    x = Draw(seed + 1).tensor(*lead, in_f, dtype=dtype)
    with unchanged(packed, scales, zeros, names=["packed", "scales", "zeros"]):
        W = impl.dequantize_groupwise_int4(packed, scales, zeros, g)
    assert_close(
        W,
        support.dequantize_groupwise_oracle(packed, scales, zeros, g).to(dtype),
        name=f"dequantize_groupwise_int4(packed ({out_f}, {in_f // 2}), group_size={g}) {dtype}",
        suspects=mistakes.on("dequantize_groupwise_int4", packed, scales, zeros, g),
    )
    with unchanged(x, packed, scales, zeros, names=["x", "packed", "scales", "zeros"]):
        y = impl.w4_matmul(x, packed, scales, zeros, g)
    want, atol = support.w4_matmul_expected(x, packed, scales, zeros, g)
    assert_close(
        y,
        want,
        atol=atol,
        name=f"w4_matmul(x {tuple(x.shape)}, packed ({out_f}, {in_f // 2}), group_size={g}) {dtype}",
        hint="x may have any number of leading dims (none too); the output keeps them and x's dtype",
        suspects=mistakes.on("w4_matmul", x, packed, scales, zeros, g),
    )


# --- memory (2 points) ---------------------------------------------------------------------

# One call in a fresh process (sandboxed under --sandbox), its peak RSS from the OS minus
# that of the same harness and inputs without the learner's code. At out = 4096, in = 8192,
# groups of 128, the packed weight is 16 MiB, one float32 slab (4096 x 128) 2 MiB and the
# whole float32 weight 128 MiB. Measured here (2 busy cores): the reference adds 10.5 MiB;
# unpacking every code first 67 MiB; dequantising the whole weight 388 MiB.
MEM_OUT, MEM_IN, MEM_GROUP, MEM_BATCH = 4096, 8192, 128, 4
MEM_BUDGET = MEM_OUT * MEM_IN // 2 + MEM_OUT * MEM_GROUP * 4  # the packed bytes + one float32 slab
MEM_CHECKED = 384  # outputs of the measured call checked against the float64 oracle


@pytest.mark.points(2)
def test_w4_matmul_peak_memory(impl, impl_files, exercise, draw):
    probe = support.random_packed(8, 16, 4, torch.float32, 3)
    impl.w4_matmul(draw.tensor(2, 16), *probe, 4)  # a stub stops here, "not started"
    packed, scales, zeros = support.random_packed(MEM_OUT, MEM_IN, MEM_GROUP, torch.float32, 5)
    x = draw.tensor(MEM_BATCH, MEM_IN)
    used = peak_memory_of_call(
        impl_files,
        "w4_matmul",
        [x, packed, scales, zeros, MEM_GROUP],
        exercise=exercise.id,
        banned=exercise.banned,
    )
    got = as_plain_tensor(used.output, "w4_matmul output")
    if tuple(got.shape) != (MEM_BATCH, MEM_OUT):
        raise CheckFailure(
            f"w4_matmul (the call measured) returned shape {tuple(got.shape)}, not {(MEM_BATCH, MEM_OUT)}"
        )
    rows = torch.randperm(MEM_OUT, generator=draw.generator)[:MEM_CHECKED].sort().values
    want, atol = support.w4_matmul_expected(x, packed[rows], scales[rows], zeros[rows], MEM_GROUP)
    assert_close(
        got[:, rows],
        want,
        atol=atol,
        name=f"{MEM_CHECKED} random outputs of w4_matmul at out={MEM_OUT}, in={MEM_IN}, "
        f"group_size={MEM_GROUP} (the call measured)",
    )
    if used.peak_bytes > MEM_BUDGET:
        packed_mib, slab_mib = format_bytes(MEM_OUT * MEM_IN // 2), format_bytes(MEM_OUT * MEM_GROUP * 4)
        call = (
            f"w4_matmul(x ({MEM_BATCH}, {MEM_IN}) float32, a packed ({MEM_OUT}, {MEM_IN // 2}) weight, "
            f"group_size={MEM_GROUP})"
        )
        raise CheckFailure(
            f"too much memory: {call} added {format_bytes(used.peak_bytes)} to the peak resident memory of "
            f"its process ({format_bytes(used.call_peak_rss)} against {format_bytes(used.control_peak_rss)} "
            "for the same process without your code; the operating system's count): "
            f"{used.peak_bytes / MEM_BUDGET:.1f}x the budget of {format_bytes(MEM_BUDGET)}, the packed "
            f"weight ({packed_mib}) plus one float32 slab of {MEM_OUT} x {MEM_GROUP} ({slab_mib}). The whole "
            f"float32 weight is {format_bytes(MEM_OUT * MEM_IN * 4)}, its unpacked uint8 codes "
            f"{format_bytes(MEM_OUT * MEM_IN)}",
            hint="loop over the groups: unpack only that group's bytes (packed[:, j * g // 2 : (j + 1) * g "
            "// 2]), dequantise the (out, g) slab and add x[..., group] @ slab.T to the output",
        )


# --- rules (1 point) -----------------------------------------------------------------------
# test_no_library_shortcuts, which the plugin generates from the catalog's `banned`
# (llmkit.plugin.bans; its call is support.check_one_call).
