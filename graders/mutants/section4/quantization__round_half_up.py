"""Mutant: rounding is floor(x + 0.5), ties always up.

Misconception: "round to nearest" is floor(x + 0.5), as taught at school. torch.round
(and torch's quantizers, and numpy) round half to even: 2.5 -> 2, -1.5 -> -2.
"""


def _round(x):
    return torch.floor(x + 0.5)


def quantize_absmax(W, bits=8, axis=None, clip_ratio=1.0):
    _check_bits(bits, clip_ratio)
    qmax = 2 ** (bits - 1) - 1
    amax = _amax(W, _reduce_dims(W, axis), axis) * clip_ratio
    scale = torch.where(amax == 0, torch.ones_like(amax), amax / qmax)
    q = torch.clamp(_round(W / scale), -qmax, qmax).to(torch.int8)
    return q, scale


def quantize_zeropoint(W, bits=8, axis=None, clip_ratio=1.0):
    _check_bits(bits, clip_ratio)
    qmax = 2**bits - 1
    lo, hi = _min_max(W, _reduce_dims(W, axis), axis)
    lo = torch.clamp(lo, max=0) * clip_ratio
    hi = torch.clamp(hi, min=0) * clip_ratio
    span = hi - lo
    scale = torch.where(span == 0, torch.ones_like(span), span / qmax)
    zero_point = torch.clamp(_round(-lo / scale), 0, qmax).to(torch.int32)
    q = torch.clamp(_round(W / scale) + zero_point, 0, qmax).to(torch.uint8)
    return q, scale, zero_point
