"""Exercise 4.2: Quantization for small models.

A weight matrix in float32 costs 4 bytes a number; stored as 8-bit codes it costs 1, as
4-bit codes half a byte. You write the three schemes that small and local models ship with:

* ``quantize_absmax`` / ``dequantize_absmax``: symmetric ("absmax") int8-style codes,
  ``W ~ q * scale``, per tensor or per channel;
* ``quantize_zeropoint`` / ``dequantize_zeropoint``: asymmetric ("affine", "zero point")
  codes 0..2^bits - 1, ``W ~ (q - zero_point) * scale``;
* ``quantize_groupwise_int4`` / ``dequantize_groupwise_int4``: 4-bit zero-point codes with
  one scale per group of input features, packed two to a byte (GPTQ / AWQ / llama.cpp
  style), and ``w4_matmul``, which multiplies by the packed weight one group at a time.

Replace every ``raise NotImplementedError``, then run

    pytest exercises/section4/test_quantization.py      (or: llmkit check 4.2)

Conventions (where libraries disagree, this is the one the tests hold you to):

* Rounding is ``torch.round``: half to even (0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -2.5 -> -2), as
  torch's quantizers and numpy do. Not ``floor(x + 0.5)``, not Python 2's half away from 0.
* Compute in W's dtype (float32 or float64 in the tests); scales have W's dtype.
* ``axis=None`` means one scale for the whole tensor: ``scale`` has shape ``()``.
  ``axis=a`` means one scale per index along dimension ``a`` (``a`` may be negative), taken
  over every other dimension: for a Linear weight (out, in), ``axis=0`` is per output
  channel. Scales keep W's number of dims, with size 1 everywhere but ``a``: (out, 1) for
  ``axis=0``, so ``W / scale`` broadcasts.
* ``clip_ratio`` (0 < clip_ratio <= 1) shrinks the range before the scale is computed,
  trading a little clipping of the largest weights for finer steps everywhere else (AWQ
  searches this ratio per layer). Weights outside the shrunk range saturate: the codes are
  always clamped to the code range before the integer cast (which would wrap around).
* A slice whose range is 0 (all zeros) gets scale 1, never 0 (W / 0 is NaN): its codes are
  the zero point and it dequantises to exact zeros.
* 2 <= bits <= 8, else ValueError; clip_ratio outside (0, 1] is a ValueError too.

Banned here (a static scan and a runtime trap enforce it): torch's own quantizers
(``torch.quantize_per_tensor``, ``torch.quantize_per_channel``,
``torch.fake_quantize_per_tensor_affine``, ``torch.fake_quantize_per_channel_affine``) and
numpy's bit packing (``numpy.packbits``, ``numpy.unpackbits``). The tests use them as
oracles. Everything else (round, clamp, amax, bit operators ``&``, ``|``, ``<<``, ``>>``,
matmul) is yours to use.
"""

from __future__ import annotations

import torch


def quantize_absmax(W: torch.Tensor, bits: int = 8, axis: int | None = None, clip_ratio: float = 1.0):
    """Symmetric quantization: returns ``(q, scale)`` with ``W ~ q * scale``.

    qmax  = 2^(bits-1) - 1                  (127 for 8 bits, 7 for 4 bits)
    amax  = max |W| over the slice (the whole tensor, or every dim but ``axis``) * clip_ratio
    scale = amax / qmax                      (1 where amax == 0)
    q     = clamp(round(W / scale), -qmax, qmax)

    * q: int8, W's shape. The code -2^(bits-1) (-128) is never used, so the range is
      symmetric and -W gives exactly -q.
    * scale: W's dtype; shape () for ``axis=None``, else W's number of dims with 1
      everywhere but ``axis``.

    Why 127 and not 127.5? torch's symmetric observers (``MinMaxObserver`` with
    ``qscheme=torch.per_tensor_symmetric``) divide amax by (quant_max - quant_min) / 2 =
    255 / 2 = 127.5, to use all 256 codes, -128 included: amax lands half a step past 127,
    rounds to 128 and is clamped to 127, while -amax gets -128. Absmax quantization as
    LLM.int8() and bitsandbytes define it divides by 2^(bits-1) - 1 = 127: the largest
    weight sits exactly on the largest code and the range is symmetric. Dividing by 128
    (2^(bits-1)) is the other classic slip.
    """
    raise NotImplementedError("exercise 4.2: write quantize_absmax()")


def dequantize_absmax(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``q * scale`` in scale's dtype (q is int8; scale broadcasts against it)."""
    raise NotImplementedError("exercise 4.2: write dequantize_absmax()")


def quantize_zeropoint(W: torch.Tensor, bits: int = 8, axis: int | None = None, clip_ratio: float = 1.0):
    """Asymmetric (affine) quantization: returns ``(q, scale, zero_point)`` with
    ``W ~ (q - zero_point) * scale``.

    qmax       = 2^bits - 1                      (255 for 8 bits, 15 for 4 bits)
    lo, hi     = min(W.min(), 0) * clip_ratio, max(W.max(), 0) * clip_ratio   (per slice)
    scale      = (hi - lo) / qmax                (1 where hi == lo, i.e. an all-zero slice)
    zero_point = clamp(round(-lo / scale), 0, qmax)
    q          = clamp(round(W / scale) + zero_point, 0, qmax)

    * The range always includes 0 (a slice of positive weights still starts at lo = 0), so
      the zero point is a valid code and the weight 0 is stored exactly: q = zero_point
      dequantises to 0.0. That matters: zeros are everywhere (padding, ReLU outputs, pruned
      weights).
    * q: uint8, W's shape. scale: W's dtype; zero_point: int32; both shaped as in
      ``quantize_absmax`` (shape () for ``axis=None``).
    """
    raise NotImplementedError("exercise 4.2: write quantize_zeropoint()")


def dequantize_zeropoint(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
    """``(q - zero_point) * scale`` in scale's dtype. q is uint8: subtract in a signed type
    (int32), or 3 - 5 wraps around to 254."""
    raise NotImplementedError("exercise 4.2: write dequantize_zeropoint()")


def quantize_groupwise_int4(W: torch.Tensor, group_size: int):
    """Group-wise 4-bit quantization of a Linear weight ``W`` (out_features, in_features):
    returns ``(packed, scales, zeros)``.

    * Groups: each row is cut into runs of ``group_size`` consecutive *input* features
      (columns j*g ... (j+1)*g - 1), the axis the matmul sums over. Each group is quantized
      like ``quantize_zeropoint(group, bits=4)``: codes 0..15, its own scale and zero point.
    * scales: (out_features, in_features // group_size), W's dtype.
    * zeros: (out_features, in_features // group_size), int32, each in 0..15.
    * packed: (out_features, in_features // 2), uint8, two codes per byte, **low nibble
      first**: byte j of a row holds code 2j in bits 0-3 and code 2j + 1 in bits 4-7
      (byte = q[2j] | q[2j + 1] << 4). Swap them and every byte still "works" with your own
      unpacker, but not with anyone else's.
    * ValueError unless W is 2-D, ``group_size`` is even (>= 2) and divides in_features.
    """
    raise NotImplementedError("exercise 4.2: write quantize_groupwise_int4()")


def dequantize_groupwise_int4(
    packed: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, group_size: int
) -> torch.Tensor:
    """The (out_features, in_features) weight, ``(code - zero) * scale`` per group, in
    scales' dtype; codes unpacked low nibble first (byte & 15, then byte >> 4)."""
    raise NotImplementedError("exercise 4.2: write dequantize_groupwise_int4()")


def w4_matmul(
    x: torch.Tensor, packed: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, group_size: int
) -> torch.Tensor:
    """``x @ W.T`` for the weight ``dequantize_groupwise_int4(packed, scales, zeros,
    group_size)``, without ever holding that weight.

    * x: (..., in_features), float32 or float64; returns (..., out_features) in x's dtype.
    * Memory: never materialise the whole dequantised weight (out x in floats, 8x the
      packed bytes in float32), nor all the unpacked codes. Loop over the groups: unpack one
      group's bytes, dequantise that (out_features, group_size) slab in x's dtype, add
      ``x[..., group] @ slab.T`` to the output. The grader measures the extra memory of
      one call (the operating system's count, at out = 4096, in = 8192, groups of 128): at
      most the packed weight's size plus one slab.
    * ValueError if x's last dim is not in_features (2 * packed.shape[1]).
    """
    raise NotImplementedError("exercise 4.2: write w4_matmul()")
