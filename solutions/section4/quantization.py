"""Exercise 4.2: Quantization for small models (reference).

Absmax (symmetric) and zero-point (affine) quantization per tensor or per channel,
group-wise 4-bit quantization packed two codes to a byte, and a matmul that reads the
packed weight one group at a time.
"""

from __future__ import annotations

import torch


def _check_bits(bits: int, clip_ratio: float) -> None:
    if not (isinstance(bits, int) and 2 <= bits <= 8):
        raise ValueError(f"bits must be an int from 2 to 8, got {bits!r}")
    if not 0.0 < clip_ratio <= 1.0:
        raise ValueError(f"clip_ratio must be in (0, 1], got {clip_ratio!r}")


def _reduce_dims(W: torch.Tensor, axis: int | None) -> tuple[int, ...]:
    """The dims a scale is reduced over: all of them, or all but ``axis``."""
    if axis is None:
        return tuple(range(W.dim()))
    axis = axis % W.dim()
    return tuple(d for d in range(W.dim()) if d != axis)


def _amax(W: torch.Tensor, dims: tuple[int, ...], axis: int | None) -> torch.Tensor:
    out = W.abs().amax(dim=dims, keepdim=True) if dims else W.abs()
    return out.reshape(()) if axis is None else out


def _min_max(W: torch.Tensor, dims: tuple[int, ...], axis: int | None):
    lo = W.amin(dim=dims, keepdim=True) if dims else W.clone()
    hi = W.amax(dim=dims, keepdim=True) if dims else W.clone()
    if axis is None:
        lo, hi = lo.reshape(()), hi.reshape(())
    return lo, hi


def quantize_absmax(W: torch.Tensor, bits: int = 8, axis: int | None = None, clip_ratio: float = 1.0):
    _check_bits(bits, clip_ratio)
    qmax = 2 ** (bits - 1) - 1
    amax = _amax(W, _reduce_dims(W, axis), axis) * clip_ratio
    scale = torch.where(amax == 0, torch.ones_like(amax), amax / qmax)
    q = torch.clamp(torch.round(W / scale), -qmax, qmax).to(torch.int8)
    return q, scale


def dequantize_absmax(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.to(scale.dtype) * scale


def quantize_zeropoint(W: torch.Tensor, bits: int = 8, axis: int | None = None, clip_ratio: float = 1.0):
    _check_bits(bits, clip_ratio)
    qmax = 2**bits - 1
    lo, hi = _min_max(W, _reduce_dims(W, axis), axis)
    lo = torch.clamp(lo, max=0) * clip_ratio
    hi = torch.clamp(hi, min=0) * clip_ratio
    span = hi - lo
    scale = torch.where(span == 0, torch.ones_like(span), span / qmax)
    zero_point = torch.clamp(torch.round(-lo / scale), 0, qmax).to(torch.int32)
    q = torch.clamp(torch.round(W / scale) + zero_point, 0, qmax).to(torch.uint8)
    return q, scale, zero_point


def dequantize_zeropoint(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
    return (q.to(torch.int32) - zero_point).to(scale.dtype) * scale


def _check_groups(in_features: int, group_size: int) -> None:
    if group_size < 2 or group_size % 2:
        raise ValueError(f"group_size must be even and at least 2, got {group_size}")
    if in_features % group_size:
        raise ValueError(f"in_features ({in_features}) is not a multiple of group_size ({group_size})")


def quantize_groupwise_int4(W: torch.Tensor, group_size: int):
    if W.dim() != 2:
        raise ValueError(f"W must be 2-D (out_features, in_features), got shape {tuple(W.shape)}")
    out_f, in_f = W.shape
    _check_groups(in_f, group_size)
    q, scale, zero_point = quantize_zeropoint(W.reshape(-1, group_size), bits=4, axis=0)
    codes = q.reshape(out_f, in_f)
    packed = codes[:, 0::2] | (codes[:, 1::2] << 4)
    n_groups = in_f // group_size
    return packed, scale.reshape(out_f, n_groups), zero_point.reshape(out_f, n_groups)


def _unpack(packed: torch.Tensor) -> torch.Tensor:
    """(rows, n) bytes -> (rows, 2n) codes, low nibble first."""
    return torch.stack([packed & 0x0F, packed >> 4], dim=-1).reshape(packed.shape[0], -1)


def dequantize_groupwise_int4(
    packed: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, group_size: int
) -> torch.Tensor:
    out_f = packed.shape[0]
    codes = _unpack(packed).reshape(out_f, -1, group_size).to(torch.int32)
    W = (codes - zeros.unsqueeze(-1)).to(scales.dtype) * scales.unsqueeze(-1)
    return W.reshape(out_f, -1)


def _check_matmul(x: torch.Tensor, packed: torch.Tensor, group_size: int) -> tuple[int, int]:
    """(out_features, in_features) of the packed weight, after checking x and the groups."""
    out_f, in_f = packed.shape[0], 2 * packed.shape[1]
    _check_groups(in_f, group_size)
    if x.shape[-1] != in_f:
        raise ValueError(f"x has {x.shape[-1]} features, the packed weight {in_f}")
    return out_f, in_f


def w4_matmul(
    x: torch.Tensor, packed: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, group_size: int
) -> torch.Tensor:
    out_f, in_f = _check_matmul(x, packed, group_size)
    out = torch.zeros(*x.shape[:-1], out_f, dtype=x.dtype)
    step = group_size // 2
    for g in range(in_f // group_size):
        slab = _unpack(packed[:, g * step : (g + 1) * step]).to(x.dtype)  # (out, group_size) codes
        slab.sub_(zeros[:, g : g + 1]).mul_(scales[:, g : g + 1])
        out += x[..., g * group_size : (g + 1) * group_size] @ slab.T
    return out
