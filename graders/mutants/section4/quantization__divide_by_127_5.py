"""Mutant: the absmax scale is amax / 127.5 ((2^bits - 1) / 2).

Misconception: torch's symmetric observer divides by (quant_max - quant_min) / 2, so
that must be the absmax scale. It uses all 256 codes, -128 included; absmax divides by
2^(bits-1) - 1 so that amax lands exactly on the largest code.
"""


def quantize_absmax(W, bits=8, axis=None, clip_ratio=1.0):
    _check_bits(bits, clip_ratio)
    qmax = 2 ** (bits - 1) - 1
    amax = _amax(W, _reduce_dims(W, axis), axis) * clip_ratio
    scale = torch.where(amax == 0, torch.ones_like(amax), amax / ((2**bits - 1) / 2))
    q = torch.clamp(torch.round(W / scale), -qmax, qmax).to(torch.int8)
    return q, scale
