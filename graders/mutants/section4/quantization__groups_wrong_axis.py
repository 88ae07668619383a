"""Mutant: groups are group_size consecutive rows of each column (along the output
features), scales (out // g, in); dequantize and w4_matmul read them the same way.

Misconception: a group is any block of group_size weights. The point of a group is
that its weights meet the same stretch of x in the dot product: it must run along
the input features, within one row.
"""


def quantize_groupwise_int4(W, group_size):
    out_f, in_f = W.shape
    _check_groups(in_f, group_size)
    n = out_f // group_size
    groups = W.reshape(n, group_size, in_f).transpose(1, 2).reshape(-1, group_size)  # (n * in, g)
    q, scale, zero_point = quantize_zeropoint(groups, bits=4, axis=0)
    codes = q.reshape(n, in_f, group_size).transpose(1, 2).reshape(out_f, in_f)
    packed = codes[:, 0::2] | (codes[:, 1::2] << 4)
    return packed, scale.reshape(n, in_f), zero_point.reshape(n, in_f)


def dequantize_groupwise_int4(packed, scales, zeros, group_size):
    codes = _unpack(packed).to(torch.int32)
    zeros = zeros.repeat_interleave(group_size, dim=0)
    scales = scales.repeat_interleave(group_size, dim=0)
    return (codes - zeros).to(scales.dtype) * scales


def w4_matmul(x, packed, scales, zeros, group_size):
    _check_matmul(x, packed, group_size)
    return x @ dequantize_groupwise_int4(packed, scales, zeros, group_size).to(x.dtype).T
