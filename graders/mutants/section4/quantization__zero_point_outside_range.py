"""Mutant: the range is [min, max] of the slice, not widened to include 0, and the
zero point round(-min / scale) is kept even when it is no valid code.

Misconception: the zero point is just an offset, any integer will do. For a slice of
positive weights it comes out negative (of negative weights, above 2^bits - 1): it no
longer fits the code type, and the weight 0 has no code of its own.
"""


def quantize_zeropoint(W, bits=8, axis=None, clip_ratio=1.0):
    _check_bits(bits, clip_ratio)
    qmax = 2**bits - 1
    lo, hi = _min_max(W, _reduce_dims(W, axis), axis)
    lo, hi = lo * clip_ratio, hi * clip_ratio
    span = hi - lo
    scale = torch.where(span == 0, torch.ones_like(span), span / qmax)
    zero_point = torch.round(-lo / scale).to(torch.int32)
    q = torch.clamp(torch.round(W / scale) + zero_point, 0, qmax).to(torch.uint8)
    return q, scale, zero_point
