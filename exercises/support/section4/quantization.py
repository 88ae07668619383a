"""Support for exercise 4.2 (Quantization for small models): what its public tests, graders,
notebook and `llmkit show` share. It ships to learners: nothing here solves the exercise.

The oracles are torch's own fake quantizer (``torch.fake_quantize_per_channel_affine``,
banned in the exercise) fed with the scales and zero points of the closed forms the stub
states, numpy's bit packing (``np.packbits`` / ``np.unpackbits``, banned too) for the 4-bit
layout, and float64 arithmetic for dequantising and the matmul. The misconceptions'
variants are the same oracles with the mistake put in: another divisor, another rounding,
no clamp, the groups transposed, the nibbles swapped.

Codes are compared exactly, except where ``W / scale`` lies within :data:`TIE_WINDOW` of a
half-integer without being one: there two correct programs may round apart (``W / scale``
and ``W * (1 / scale)`` differ in the last bit, and torch's fake quantizer multiplies by
the reciprocal), so a code one step away is accepted. Exact ties are tested on purpose,
with scales that are powers of two, and there nothing is waived.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from hypothesis import strategies as st

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    CheckFailure,
    Draw,
    Misconception,
    Misconceptions,
    as_plain_tensor,
    assert_close,
)

TIE_WINDOW = 1e-4  # |frac(W / scale) - 0.5| below this, and not 0: either neighbour is accepted

# --- the closed forms the stub states ------------------------------------------------


def absmax_qmax(bits: int) -> int:
    """Largest absmax code: 2^(bits-1) - 1 (127 for 8 bits); codes run from -qmax to qmax."""
    return 2 ** (bits - 1) - 1


def zeropoint_qmax(bits: int) -> int:
    """Largest zero-point code: 2^bits - 1 (255 for 8 bits); codes run from 0 to qmax."""
    return 2**bits - 1


def _reduced(W: torch.Tensor, axis: int | None, how: str) -> torch.Tensor:
    """``W.<how>()`` over every dim but ``axis`` (all dims when None), kept broadcastable:
    shape () for axis=None, else W's shape with 1 everywhere but ``axis``."""
    if axis is None:
        return getattr(W, how)()
    dims = [d for d in range(W.dim()) if d != axis % W.dim()]
    return getattr(W, how)(dim=dims, keepdim=True) if dims else W.clone()


def absmax_scale(W: torch.Tensor, bits: int, axis: int | None, clip_ratio: float = 1.0, levels=None):
    """amax * clip_ratio / levels (levels = 2^(bits-1) - 1), 1 where amax is 0; W's dtype."""
    amax = _reduced(W.abs(), axis, "amax") * clip_ratio
    levels = absmax_qmax(bits) if levels is None else levels
    return torch.where(amax == 0, torch.ones_like(amax), amax / levels)


def zeropoint_range(W: torch.Tensor, axis: int | None, clip_ratio: float = 1.0, include_zero: bool = True):
    """(lo, hi) of each slice times clip_ratio; with include_zero, lo <= 0 <= hi."""
    lo, hi = _reduced(W, axis, "amin"), _reduced(W, axis, "amax")
    if include_zero:
        lo, hi = lo.clamp(max=0), hi.clamp(min=0)
    return lo * clip_ratio, hi * clip_ratio


def zeropoint_scale(lo: torch.Tensor, hi: torch.Tensor, bits: int) -> torch.Tensor:
    span = hi - lo
    return torch.where(span == 0, torch.ones_like(span), span / zeropoint_qmax(bits))


# --- torch's fake quantizer as the oracle of the codes ---------------------------------


def fake_quant_codes(W, scale, zero_point, axis, qmin: int, qmax: int) -> torch.Tensor:
    """The integer codes torch's ``fake_quantize_per_channel_affine`` gives ``W`` with these
    scales and zero points (broadcastable to W as the stub's are), as int64:
    clamp(round_half_even(W / scale) + zero_point, qmin, qmax)."""
    scale = torch.as_tensor(scale, dtype=torch.float64)
    zero_point = torch.as_tensor(zero_point).to(torch.int32)
    if axis is None:
        flat_w, ch_axis = W.reshape(1, -1), 0
        flat_s, flat_z = scale.reshape(1), zero_point.reshape(1).expand(1)
    else:
        flat_w, ch_axis = W, axis % W.dim()
        flat_s = scale.reshape(-1).expand(W.shape[ch_axis])
        flat_z = zero_point.reshape(-1).expand(W.shape[ch_axis])
    s32 = flat_s.to(torch.float32).contiguous()
    fq = torch.fake_quantize_per_channel_affine(
        flat_w.contiguous(), s32, flat_z.contiguous(), ch_axis, qmin, qmax
    ).to(torch.float64)
    shape = [1] * flat_w.dim()
    shape[ch_axis] = -1
    codes = torch.round(fq / s32.to(torch.float64).reshape(shape)) + flat_z.to(torch.float64).reshape(shape)
    return codes.to(torch.int64).reshape(W.shape)


def absmax_oracle(W, bits=8, axis=None, clip_ratio=1.0):
    """(q int8, scale) as the stub defines them, the codes from torch's fake quantizer."""
    qmax = absmax_qmax(bits)
    scale = absmax_scale(W, bits, axis, clip_ratio)
    codes = fake_quant_codes(W, scale, torch.zeros_like(scale, dtype=torch.int32), axis, -qmax, qmax)
    return codes.to(torch.int8), scale


def zeropoint_oracle(W, bits=8, axis=None, clip_ratio=1.0):
    """(q uint8, scale, zero_point int32) as the stub defines them, the codes from torch's
    fake quantizer; the zero point is clamp(round(-lo / scale), 0, 2^bits - 1)."""
    qmax = zeropoint_qmax(bits)
    lo, hi = zeropoint_range(W, axis, clip_ratio)
    scale = zeropoint_scale(lo, hi, bits)
    zero_point = torch.clamp(torch.round(-lo / scale), 0, qmax).to(torch.int32)
    codes = fake_quant_codes(W, scale, zero_point, axis, 0, qmax)
    return codes.to(torch.uint8), scale, zero_point


# --- 4-bit packing with numpy's bit functions ------------------------------------------


def pack_nibbles(codes) -> torch.Tensor:
    """(rows, 2n) codes 0..15 -> (rows, n) uint8, code 2j in bits 0-3 (low nibble), code
    2j + 1 in bits 4-7, by numpy's bit unpacking and packing (little-endian bit order)."""
    c = np.ascontiguousarray(torch.as_tensor(codes).to(torch.uint8).numpy())
    rows, width = c.shape
    bits = np.unpackbits(c[..., None], axis=-1, bitorder="little")[..., :4]  # (rows, 2n, 4)
    packed = np.packbits(bits.reshape(rows, width // 2, 8), axis=-1, bitorder="little")
    return torch.from_numpy(packed.reshape(rows, width // 2).copy())


def _nibble_table() -> np.ndarray:
    """(256, 2): the two 4-bit codes of every byte value, low nibble first, by numpy's bits."""
    bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=-1, bitorder="little")
    return np.packbits(bits.reshape(256, 2, 4), axis=-1, bitorder="little").reshape(256, 2).astype(np.int64)


NIBBLES = _nibble_table()


def unpack_nibbles(packed) -> torch.Tensor:
    """(rows, n) uint8 -> (rows, 2n) int64 codes, the low nibble of each byte first (a look-up
    in the table numpy's bit functions made)."""
    p = torch.as_tensor(packed).to(torch.uint8).numpy()
    rows, width = p.shape
    return torch.from_numpy(NIBBLES[p].reshape(rows, 2 * width))


def swap_nibbles(packed) -> torch.Tensor:
    """Each byte with its two nibbles exchanged: the high-nibble-first layout."""
    codes = unpack_nibbles(packed)
    rows, width = codes.shape
    return pack_nibbles(codes.reshape(rows, width // 2, 2).flip(-1).reshape(rows, width))


def groupwise_oracle(W, group_size):
    """(packed (out, in/2) uint8, scales (out, in/g), zeros (out, in/g) int32): every run of
    ``group_size`` inputs of a row quantized as ``zeropoint_oracle(..., bits=4)`` does it."""
    out_f, in_f = W.shape
    q, scale, zero = zeropoint_oracle(W.reshape(-1, group_size), bits=4, axis=0)
    n_groups = in_f // group_size
    packed = pack_nibbles(q.reshape(out_f, in_f))
    return packed, scale.reshape(out_f, n_groups), zero.reshape(out_f, n_groups)


def _expand_groups(t: torch.Tensor, shape) -> torch.Tensor:
    """Per-group values repeated over their group, to ``shape``."""
    for d, (n, full) in enumerate(zip(t.shape, shape)):
        if n != full:
            t = t.repeat_interleave(full // n, dim=d)
    return t


def dequantize_groupwise_oracle(packed, scales, zeros, group_size) -> torch.Tensor:
    """float64 closed form: (code - zero) * scale, per group."""
    codes = unpack_nibbles(packed).to(torch.float64)
    scale = _expand_groups(torch.as_tensor(scales).to(torch.float64), codes.shape)
    zero = _expand_groups(torch.as_tensor(zeros).to(torch.float64), codes.shape)
    return (codes - zero) * scale


def _w4_products(x, packed, scales, zeros, group_size, rows_per_chunk: int = 512):
    """x @ W_hat.T and |x| @ |W_hat|.T in float64, W_hat a few hundred rows at a time."""
    x64 = x.to(torch.float64)
    parts, sizes = [], []
    for start in range(0, packed.shape[0], rows_per_chunk):
        rows = slice(start, start + rows_per_chunk)
        w = dequantize_groupwise_oracle(packed[rows], scales[rows], zeros[rows], group_size)
        parts.append(x64 @ w.T)
        sizes.append(x64.abs() @ w.abs().T)
    return torch.cat(parts, dim=-1), torch.cat(sizes, dim=-1)


def w4_matmul_oracle(x, packed, scales, zeros, group_size) -> torch.Tensor:
    """x @ W_hat.T computed in float64 from the dequantised weight, cast to x's dtype."""
    return _w4_products(x, packed, scales, zeros, group_size)[0].to(x.dtype)


# A sum of n products in float32 drifts by about sqrt(n) * 6e-8 of the sum of their sizes:
# the absolute tolerance of a matmul is this fraction of the largest sum |x| @ |W|.T.
MATMUL_ATOL = {torch.float32: 1e-6, torch.float64: 1e-13}


def w4_matmul_expected(x, packed, scales, zeros, group_size) -> tuple[torch.Tensor, float]:
    """(the oracle's output in x's dtype, the absolute tolerance for it: see MATMUL_ATOL)."""
    product, size = _w4_products(x, packed, scales, zeros, group_size)
    return product.to(x.dtype), MATMUL_ATOL.get(x.dtype, 1e-3) * float(size.max())


# --- comparing quantized tuples -----------------------------------------------------------

PARTS = {
    "absmax": ("q", "scale"),
    "zeropoint": ("q", "scale", "zero_point"),
    "groupwise": ("packed", "scales", "zeros"),
}


def _close(actual, expected, name) -> str | None:
    try:
        assert_close(actual, expected, name=name)
    except CheckFailure as failure:
        return str(failure).split("\nHint:")[0]
    return None


def quantized_problem(actual, expected, W, kind: str, what: str, tie_window: float = TIE_WINDOW):
    """What differs between a learner's quantized tuple and ``expected`` (None if nothing):
    scales within the dtype's tolerance, zero points exactly, codes exactly except near
    (not at) a rounding tie, where a neighbour is accepted."""
    names = PARTS[kind]
    if not isinstance(actual, (tuple, list)) or len(actual) != len(names):
        got = f"a {type(actual).__name__}" + (
            f" of {len(actual)}" if isinstance(actual, (tuple, list)) else ""
        )
        return f"{what}: expected a tuple ({', '.join(names)}), got {got}"
    got = [as_plain_tensor(a, f"{what} -> {n}") for a, n in zip(actual, names)]
    want = [torch.as_tensor(e) for e in expected]
    for i in range(1, len(names)):  # scale, then the zero point
        problem = _close(got[i], want[i], f"{what} -> {names[i]}")
        if problem:
            return problem
    codes, want_codes = got[0], want[0]
    if codes.shape != want_codes.shape or codes.dtype != want_codes.dtype:
        return _close(codes, want_codes, f"{what} -> {names[0]}")
    if kind == "groupwise":
        codes, want_codes = unpack_nibbles(codes), unpack_nibbles(want_codes)
    codes, want_codes = codes.to(torch.int64), want_codes.to(torch.int64)
    scale = _expand_groups(want[1].to(torch.float64), W.shape)
    ratio = W.to(torch.float64) / scale
    if kind != "absmax":
        ratio = ratio + _expand_groups(want[2].to(torch.float64), W.shape)
    off_tie = (ratio - torch.floor(ratio) - 0.5).abs()
    near_tie = (off_tie < tie_window) & (off_tie > 0)
    wrong = (codes != want_codes) & ~(near_tie & ((codes - want_codes).abs() == 1))
    if not wrong.any():
        return None
    n = int(wrong.sum())
    first = tuple(int(i) for i in wrong.nonzero()[0])
    label = "code (unpacked, low nibble first)" if kind == "groupwise" else "code"
    extra = "" if kind == "absmax" else " + zero point"
    return (
        f"{what} -> {names[0]}: {n} of {wrong.numel()} codes differ. First at index {first}: "
        f"W = {W[first].item():.8g}, "
        f"W / scale{extra} = {ratio[first].item():.6g}, expected {label} {int(want_codes[first])}, "
        f"got {int(codes[first])}"
    )


def check_quantized(
    actual, expected, W, *, kind: str, what: str, hint=None, suspects=None, tie_window=TIE_WINDOW
):
    """Fail with the first difference (``quantized_problem``), led by the likely mistake."""
    problem = quantized_problem(actual, expected, W, kind, what, tie_window)
    if problem is None:
        return
    if suspects is not None:
        diagnosis = suspects.first_match(
            lambda v: quantized_problem(actual, v, W, kind, what, tie_window) is None
        )
        problem = f"{diagnosis}\n{problem}" if diagnosis else problem
    raise CheckFailure(problem, hint=hint)


# --- inputs the public tests and graders draw ----------------------------------------------


class Case(NamedTuple):
    shape: tuple[int, ...]
    axis: int | None
    bits: int
    clip_ratio: float
    dtype: torch.dtype
    sign: str  # "mixed", "positive" or "negative" values
    magnitude: float
    seed: int

    def tensor(self) -> torch.Tensor:
        W = Draw(self.seed).tensor(*self.shape, dtype=torch.float64, scale=self.magnitude)
        if self.sign != "mixed":
            W = W.abs() + 0.05 * self.magnitude
            W = W if self.sign == "positive" else -W
        return W.to(self.dtype)

    def describe(self, fn: str) -> str:
        axis = "" if self.axis is None else f", axis={self.axis}"
        clip = "" if self.clip_ratio == 1.0 else f", clip_ratio={self.clip_ratio}"
        return f"{fn}(W {self.shape} {self.dtype} ({self.sign} values), bits={self.bits}{axis}{clip})"


@st.composite
def quant_case(draw_st, max_dims: int = 3, max_size: int = 6, bits=(2, 3, 4, 8)):
    """A tensor to quantize: shape, axis (None or any valid one, negative too), bits,
    clip ratio, dtype, sign of the values, magnitude and a value seed."""
    shape = tuple(draw_st(st.lists(st.integers(1, max_size), min_size=1, max_size=max_dims)))
    axis = draw_st(st.none() | st.integers(-len(shape), len(shape) - 1))
    return Case(
        shape=shape,
        axis=axis,
        bits=draw_st(st.sampled_from(bits)),
        clip_ratio=draw_st(st.sampled_from([1.0, 1.0, 0.75, 0.5])),
        dtype=draw_st(FLOAT_DTYPES),
        sign=draw_st(st.sampled_from(["mixed", "mixed", "positive", "negative"])),
        magnitude=draw_st(st.sampled_from([0.02, 1.0, 40.0])),
        seed=draw_st(SEEDS),
    )


class GroupCase(NamedTuple):
    out_features: int
    in_features: int
    group_size: int
    dtype: torch.dtype
    seed: int

    def weight(self) -> torch.Tensor:
        return Draw(self.seed).tensor(self.out_features, self.in_features, dtype=self.dtype)

    def describe(self, fn: str = "quantize_groupwise_int4") -> str:
        shape = (self.out_features, self.in_features)
        return f"{fn}(W {shape} {self.dtype}, group_size={self.group_size})"


@st.composite
def group_case(draw_st, out_multiple_of_group: bool = False):
    """A weight for group-wise quantization: group size, groups per row, rows, dtype, seed.
    With ``out_multiple_of_group`` the row count is a multiple of the group size too."""
    g = draw_st(st.sampled_from([2, 4, 8, 16]))
    out_f = g * draw_st(st.integers(1, 2)) if out_multiple_of_group else draw_st(st.integers(1, 6))
    return GroupCase(out_f, g * draw_st(st.integers(1, 4)), g, draw_st(FLOAT_DTYPES), draw_st(SEEDS))


def random_packed(out_f: int, in_f: int, group_size: int, dtype, seed: int):
    """Any packed weight (every byte value possible), positive scales and zeros 0..15."""
    rng = Draw(seed)
    gen = rng.generator
    packed = torch.randint(0, 256, (out_f, in_f // 2), generator=gen, dtype=torch.uint8)
    scales = (torch.rand(out_f, in_f // group_size, generator=gen, dtype=torch.float64) + 0.05).to(dtype)
    zeros = torch.randint(0, 16, (out_f, in_f // group_size), generator=gen, dtype=torch.int32)
    return packed, scales, zeros


# Ties on purpose: with amax = 2^(bits-1) - 1 the absmax scale is exactly 1, so W / scale is
# W itself, and 0.5, 1.5, 2.5, ... are exact ties (half to even: 0, 2, 2, -2, ...).
TIE_VALUES = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -3.5, 4.5, 5.5, -6.5, 6.0]


def tie_tensor(bits: int, dtype=torch.float32) -> torch.Tensor:
    """A row whose absmax scale is 1 at ``bits``: exact ties below the largest code."""
    qmax = absmax_qmax(bits)
    values = [v for v in TIE_VALUES if abs(v) < qmax] + [float(qmax)]
    return torch.tensor([values], dtype=dtype)


def zeropoint_tie_tensor(bits: int, dtype=torch.float32) -> torch.Tensor:
    """A row with lo = -2.5 and hi = 2^bits - 3.5: the zero-point scale is exactly 1, the zero
    point round(2.5) = 2 is a tie itself, and so are the codes of 0.5, -1.5, ..."""
    top = 2.0**bits - 3.5
    values = [-2.5, top] + [v for v in (0.5, 1.5, -0.5, -1.5, top - 1.5, 0.0) if -2.5 <= v <= top]
    return torch.tensor([values], dtype=dtype)


# --- misconceptions: what each known mistake returns, from the oracles ---------------------


def _absmax_levels(levels):
    def variant(W, bits=8, axis=None, clip_ratio=1.0):
        qmax = absmax_qmax(bits)
        scale = absmax_scale(W, bits, axis, clip_ratio, levels=levels(bits))
        codes = fake_quant_codes(W, scale, torch.zeros_like(scale, dtype=torch.int32), axis, -qmax, qmax)
        return codes.to(torch.int8), scale

    return variant


def _half_up(x):
    return torch.floor(x + 0.5)


def _absmax_half_up(W, bits=8, axis=None, clip_ratio=1.0):
    qmax = absmax_qmax(bits)
    scale = absmax_scale(W, bits, axis, clip_ratio)
    return _half_up(W / scale).clamp(-qmax, qmax).to(torch.int8), scale


def _zeropoint_half_up(W, bits=8, axis=None, clip_ratio=1.0):
    qmax = zeropoint_qmax(bits)
    lo, hi = zeropoint_range(W, axis, clip_ratio)
    scale = zeropoint_scale(lo, hi, bits)
    zero = _half_up(-lo / scale).clamp(0, qmax).to(torch.int32)
    return (_half_up(W / scale) + zero).clamp(0, qmax).to(torch.uint8), scale, zero


def _zeropoint_unclamped_zero(W, bits=8, axis=None, clip_ratio=1.0):
    """The range not widened to include 0: the zero point falls outside [0, qmax] for a
    slice of one sign, and is kept there."""
    qmax = zeropoint_qmax(bits)
    lo, hi = zeropoint_range(W, axis, clip_ratio, include_zero=False)
    scale = zeropoint_scale(lo, hi, bits)
    zero = torch.round(-lo / scale).to(torch.int32)
    # round(W / scale) from the oracle, with a range wide enough never to clamp
    rounded = fake_quant_codes(W, scale, torch.zeros_like(zero), axis, -(2**20), 2**20)
    return (rounded + zero).clamp(0, qmax).to(torch.uint8), scale, zero


def _absmax_unclamped(W, bits=8, axis=None, clip_ratio=1.0):
    scale = absmax_scale(W, bits, axis, clip_ratio)
    rounded = fake_quant_codes(W, scale, torch.zeros_like(scale, dtype=torch.int32), axis, -(2**20), 2**20)
    return rounded.to(torch.int8), scale  # int64 -> int8 wraps around, as the cast does


def _zeropoint_unclamped(W, bits=8, axis=None, clip_ratio=1.0):
    _, scale, zero = zeropoint_oracle(W, bits, axis, clip_ratio)
    rounded = fake_quant_codes(W, scale, torch.zeros_like(zero), axis, -(2**20), 2**20)
    return (rounded + zero).to(torch.uint8), scale, zero  # wraps: 256 -> 0, -1 -> 255


def _groupwise_from(zeropoint):
    """The group-wise quantizer built on another zero-point quantizer (a mistaken one)."""

    def variant(W, group_size):
        out_f, in_f = W.shape
        q, scale, zero = zeropoint(W.reshape(-1, group_size), bits=4, axis=0)
        n_groups = in_f // group_size
        return (
            pack_nibbles(q.reshape(out_f, in_f)),
            scale.reshape(out_f, n_groups),
            zero.reshape(out_f, n_groups),
        )

    return variant


def _groupwise_along_columns(W, group_size):
    """Groups of ``group_size`` consecutive rows in each column: the oracle on W^T, the codes
    transposed back (packed along the input features as usual), scales (out / g, in)."""
    out_f, in_f = W.shape
    q, scale, zero = zeropoint_oracle(W.T.reshape(-1, group_size), bits=4, axis=0)
    codes = q.reshape(in_f, out_f).T
    n = out_f // group_size
    return pack_nibbles(codes), scale.reshape(in_f, n).T, zero.reshape(in_f, n).T


def _groupwise_swapped(W, group_size):
    packed, scales, zeros = groupwise_oracle(W, group_size)
    return swap_nibbles(packed), scales, zeros


MISCONCEPTIONS = Misconceptions(
    "exercises/section4/README.md",
    Misconception(
        "divide_by_128",
        "absmax scale = amax / 2^(bits-1)",
        "the largest code is 2^(bits-1) - 1 = 127, so scale = amax / 127: with /128 the largest weight "
        "lands on 128, which int8 cannot hold, and it is clamped to 127 (an error of a whole step)",
        readme="4.2 — The absmax scale",
        variants={"quantize_absmax": _absmax_levels(lambda bits: 2 ** (bits - 1))},
    ),
    Misconception(
        "divide_by_127_5",
        "absmax scale = amax / 127.5",
        "torch's symmetric observers divide by (quant_max - quant_min) / 2 = 127.5 to use the code -128 "
        "too; absmax divides by 2^(bits-1) - 1 = 127, so that amax lands exactly on the largest code",
        readme="4.2 — The absmax scale",
        variants={"quantize_absmax": _absmax_levels(lambda bits: (2**bits - 1) / 2)},
    ),
    Misconception(
        "round_half_up",
        "ties rounded up (floor(x + 0.5))",
        "torch.round rounds half to even (2.5 -> 2, 3.5 -> 4, -2.5 -> -2), as torch's quantizers do; "
        "floor(x + 0.5) sends every tie up",
        readme="4.2 — Rounding half to even",
        variants={
            "quantize_absmax": _absmax_half_up,
            "quantize_zeropoint": _zeropoint_half_up,
            "quantize_groupwise_int4": _groupwise_from(_zeropoint_half_up),
        },
    ),
    Misconception(
        "zero_point_outside_range",
        "the zero point outside [0, 2^bits - 1]",
        "widen each slice's range to include 0 (lo = min(W.min(), 0), hi = max(W.max(), 0)) so the zero "
        "point is a valid code and 0 is stored exactly; with a slice of one sign it is not",
        readme="4.2 — Zero points and clipping",
        variants={
            "quantize_zeropoint": _zeropoint_unclamped_zero,
            "quantize_groupwise_int4": _groupwise_from(_zeropoint_unclamped_zero),
        },
    ),
    Misconception(
        "codes_not_clamped",
        "codes not clamped",
        "with clip_ratio < 1 the largest weights fall outside the range: clamp the codes to "
        "[-qmax, qmax] (absmax) or [0, 2^bits - 1] (zero point) before the cast, which wraps around "
        "(int8: 130 -> -126; uint8: 256 -> 0)",
        readme="4.2 — Zero points and clipping",
        variants={"quantize_absmax": _absmax_unclamped, "quantize_zeropoint": _zeropoint_unclamped},
    ),
    Misconception(
        "zero_scale_for_zero_slice",
        "scale 0 for an all-zero slice",
        "a slice (or group) of zeros has amax = 0 and a range of 0: W / 0 is NaN; give it scale 1 "
        "(torch.where(amax == 0, 1, amax / qmax)), and every code is the zero point",
        readme="4.2 — All-zero slices",
    ),
    Misconception(
        "groups_wrong_axis",
        "groups along the output features",
        "a group is group_size consecutive *input* features of one row (W.reshape(out, in // g, g)), "
        "the axis the dot product runs over; scales are (out, in // g), not (out // g, in)",
        readme="4.2 — Groups and nibbles",
        variants={"quantize_groupwise_int4": _groupwise_along_columns},
    ),
    Misconception(
        "nibbles_swapped",
        "high nibble first",
        "code 2j goes in the low nibble (bits 0-3) and code 2j + 1 in the high one: "
        "byte = q[2j] | (q[2j + 1] << 4); unpack with byte & 15 first, then byte >> 4",
        readme="4.2 — Groups and nibbles",
        variants={
            "quantize_groupwise_int4": _groupwise_swapped,
            "dequantize_groupwise_int4": lambda packed, scales, zeros, group_size: (
                dequantize_groupwise_oracle(swap_nibbles(packed), scales, zeros, group_size).to(scales.dtype)
            ),
            "w4_matmul": lambda x, packed, scales, zeros, group_size: w4_matmul_oracle(
                x, swap_nibbles(packed), scales, zeros, group_size
            ),
        },
    ),
    Misconception(
        "dequantize_whole_matrix",
        "the whole weight dequantised before the matmul",
        "x @ dequantize(...).T holds out x in floats, 8x the packed bytes in float32: dequantise one "
        "group of columns at a time and accumulate x[..., group] @ slab.T",
        readme="4.2 — Memory of the 4-bit matmul",
        kind="memory",
    ),
    Misconception(
        "unpacks_every_code",
        "every code unpacked before the loop",
        "unpacking the whole packed weight first holds out x in codes (2x the packed bytes, more as "
        "int32): unpack inside the loop, one group's bytes at a time",
        readme="4.2 — Memory of the 4-bit matmul",
        kind="memory",
    ),
)


def check_one_call(impl, draw) -> None:
    """One small call of the learner's quantizers, checked against torch's fake quantizer
    and numpy's packing: the generated ban test makes it with banned calls trapped."""
    W = draw.tensor(4, 8)
    check_quantized(impl.quantize_absmax(W, 8, 0), absmax_oracle(W, 8, 0), W, kind="absmax", what="absmax")
    check_quantized(
        impl.quantize_groupwise_int4(W, 4), groupwise_oracle(W, 4), W, kind="groupwise", what="int4"
    )


# --- the picture ---------------------------------------------------------------------------

FIG_BITS = (8, 6, 4, 3)


def _mlp(seed: int = 5, d: int = 64, hidden: int = 256, batch: int = 256):
    """A random 2-layer GELU MLP whose first layer has a few outlier input columns, as LLM
    weights do, and a batch of inputs."""
    gen = torch.Generator().manual_seed(seed)
    w1 = torch.randn(hidden, d, generator=gen) / d**0.5
    w1[:, :3] *= 12.0  # outlier input features
    w2 = torch.randn(d, hidden, generator=gen) / hidden**0.5
    x = torch.randn(batch, d, generator=gen)
    return w1, w2, x


def _rel(a, b) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def figure(impl) -> Figure:
    """The rounding error of ``impl``'s per-channel absmax at 8, 6, 4 and 3 bits, and the
    output error of a random MLP whose weights ``impl`` quantizes, against bits."""
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(2)
    W = torch.randn(256, 256, generator=gen)
    fig, axes = new_figure(11.0, 4.0, ncols=2)
    ax = axes[0]
    for bits in FIG_BITS:
        q, scale = impl.quantize_absmax(W, bits, 0)
        err = (torch.as_tensor(impl.dequantize_absmax(q, scale)) - W).abs()
        err = err[err > 0]
        ax.hist(torch.log10(err).numpy(), bins=80, histtype="step", lw=1.5, label=f"{bits} bits")
    ax.set_xlabel("log10 |dequantised - original|  (per-channel absmax, N(0, 1) weights)")
    ax.set_ylabel("weights")
    ax.set_title("rounding error: each bit halves it", fontsize=10)
    ax.legend(fontsize=8)

    w1, w2, x = _mlp()
    want = F.gelu(x @ w1.T) @ w2.T
    bits_axis = list(range(2, 9))
    curves = {"absmax per tensor": [], "absmax per channel": [], "zero point per channel": []}
    for bits in bits_axis:
        for label, (fn, deq, axis) in {
            "absmax per tensor": (impl.quantize_absmax, impl.dequantize_absmax, None),
            "absmax per channel": (impl.quantize_absmax, impl.dequantize_absmax, 0),
            "zero point per channel": (impl.quantize_zeropoint, impl.dequantize_zeropoint, 0),
        }.items():
            w1q, w2q = (torch.as_tensor(deq(*fn(w, bits, axis))) for w in (w1, w2))
            curves[label].append(_rel(F.gelu(x @ w1q.T) @ w2q.T, want))
    ax = axes[1]
    for label, errors in curves.items():
        ax.plot(bits_axis, errors, marker="o", label=label)
    for group_size, marker in ((64, "s"), (16, "D")):
        p1, s1, z1 = impl.quantize_groupwise_int4(w1, group_size)
        p2, s2, z2 = impl.quantize_groupwise_int4(w2, group_size)
        h = F.gelu(torch.as_tensor(impl.w4_matmul(x, p1, s1, z1, group_size)))
        got = torch.as_tensor(impl.w4_matmul(h, p2, s2, z2, group_size))
        ax.plot(
            [4],
            [_rel(got, want)],
            marker=marker,
            ls="",
            ms=9,
            label=f"int4, groups of {group_size} (w4_matmul)",
        )
    ax.set_yscale("log")
    ax.set_xlabel("bits per weight")
    ax.set_ylabel("relative output error ||y_q - y|| / ||y||")
    ax.set_title("a random MLP with outlier inputs, quantized", fontsize=10)
    ax.legend(fontsize=8)
    caption = (
        "Rounding error of your per-channel absmax at 8, 6, 4 and 3 bits, and the output error of a "
        "random MLP whose weights your quantizers store, against bits"
    )
    return png(fig), caption
