"""Mutant: w4_matmul dequantises the whole weight, then multiplies.

Misconception: the weight is stored in 4 bits, so the matmul is a 4-bit matmul. The
(out, in) float32 weight it builds costs 8x the packed bytes, the very memory the
format saves; a kernel (or a loop over groups) only ever holds one slab.
"""


def w4_matmul(x, packed, scales, zeros, group_size):
    _check_matmul(x, packed, group_size)
    return x @ dequantize_groupwise_int4(packed, scales, zeros, group_size).to(x.dtype).T
