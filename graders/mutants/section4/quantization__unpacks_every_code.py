"""Mutant: w4_matmul unpacks every code of the weight first, then dequantises and
multiplies one group at a time.

Misconception: only the float weight is big. The unpacked uint8 codes alone are twice
the packed bytes (and the unpacking makes more temporaries of that size).
"""


def w4_matmul(x, packed, scales, zeros, group_size):
    _check_matmul(x, packed, group_size)
    codes = _unpack(packed)
    out = torch.zeros(*x.shape[:-1], packed.shape[0], dtype=x.dtype)
    for g in range(codes.shape[1] // group_size):
        slab = codes[:, g * group_size : (g + 1) * group_size].to(x.dtype)
        slab.sub_(zeros[:, g : g + 1]).mul_(scales[:, g : g + 1])
        out += x[..., g * group_size : (g + 1) * group_size] @ slab.T
    return out
