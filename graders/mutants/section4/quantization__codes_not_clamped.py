"""Mutant: the codes are cast to int8 / uint8 without clamping them first.

Misconception: with scale = amax / qmax no code can leave the range, so the clamp is
dead code. With clip_ratio < 1 the largest weights fall outside the range, and the
cast wraps around (int8: 130 -> -126; uint8: 256 -> 0) instead of saturating.
"""


def quantize_absmax(W, bits=8, axis=None, clip_ratio=1.0):
    _check_bits(bits, clip_ratio)
    qmax = 2 ** (bits - 1) - 1
    amax = _amax(W, _reduce_dims(W, axis), axis) * clip_ratio
    scale = torch.where(amax == 0, torch.ones_like(amax), amax / qmax)
    return torch.round(W / scale).to(torch.int8), scale


def quantize_zeropoint(W, bits=8, axis=None, clip_ratio=1.0):
    _check_bits(bits, clip_ratio)
    qmax = 2**bits - 1
    lo, hi = _min_max(W, _reduce_dims(W, axis), axis)
    lo = torch.clamp(lo, max=0) * clip_ratio
    hi = torch.clamp(hi, min=0) * clip_ratio
    span = hi - lo
    scale = torch.where(span == 0, torch.ones_like(span), span / qmax)
    zero_point = torch.clamp(torch.round(-lo / scale), 0, qmax).to(torch.int32)
    q = (torch.round(W / scale) + zero_point).to(torch.uint8)
    return q, scale, zero_point
