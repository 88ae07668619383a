"""Mutant: the absmax scale is amax / 2^(bits-1) (128 for 8 bits).

Misconception: int8 holds 256 values, half of them on each side, so the step is
amax / 128. But the largest code is 127: the largest weight lands on 128 and is
clamped, and every scale is 127/128 of what it should be.
"""


def quantize_absmax(W, bits=8, axis=None, clip_ratio=1.0):
    _check_bits(bits, clip_ratio)
    qmax = 2 ** (bits - 1) - 1
    amax = _amax(W, _reduce_dims(W, axis), axis) * clip_ratio
    scale = torch.where(amax == 0, torch.ones_like(amax), amax / 2 ** (bits - 1))
    q = torch.clamp(torch.round(W / scale), -qmax, qmax).to(torch.int8)
    return q, scale
