"""Mutant: scale = amax / qmax (or range / qmax) with no guard for a range of 0.

Misconception: weights are never all zero. A pruned channel, a padded group or a
zero-initialised bias is: amax = 0 gives scale 0, W / 0 is 0 / 0 = NaN, and NaN cast to
an integer is whatever the hardware makes of it.
"""


def quantize_absmax(W, bits=8, axis=None, clip_ratio=1.0):
    _check_bits(bits, clip_ratio)
    qmax = 2 ** (bits - 1) - 1
    scale = _amax(W, _reduce_dims(W, axis), axis) * clip_ratio / qmax
    q = torch.clamp(torch.round(W / scale), -qmax, qmax).to(torch.int8)
    return q, scale


def quantize_zeropoint(W, bits=8, axis=None, clip_ratio=1.0):
    _check_bits(bits, clip_ratio)
    qmax = 2**bits - 1
    lo, hi = _min_max(W, _reduce_dims(W, axis), axis)
    lo = torch.clamp(lo, max=0) * clip_ratio
    hi = torch.clamp(hi, min=0) * clip_ratio
    scale = (hi - lo) / qmax
    zero_point = torch.clamp(torch.round(-lo / scale), 0, qmax).to(torch.int32)
    q = torch.clamp(torch.round(W / scale) + zero_point, 0, qmax).to(torch.uint8)
    return q, scale, zero_point
