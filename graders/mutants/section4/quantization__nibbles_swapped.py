"""Mutant: code 2j goes in the high nibble and code 2j + 1 in the low one, and the
unpacker reads them back the same way.

Misconception: the order of two nibbles in a byte is a private matter, since my
unpacker agrees with my packer. Every other reader of the format (a kernel, a file
loader) gets each pair of weights swapped.
"""


def quantize_groupwise_int4(W, group_size):
    if W.dim() != 2:
        raise ValueError(f"W must be 2-D (out_features, in_features), got shape {tuple(W.shape)}")
    out_f, in_f = W.shape
    _check_groups(in_f, group_size)
    q, scale, zero_point = quantize_zeropoint(W.reshape(-1, group_size), bits=4, axis=0)
    codes = q.reshape(out_f, in_f)
    packed = (codes[:, 0::2] << 4) | codes[:, 1::2]
    n_groups = in_f // group_size
    return packed, scale.reshape(out_f, n_groups), zero_point.reshape(out_f, n_groups)


def _unpack(packed):
    return torch.stack([packed >> 4, packed & 0x0F], dim=-1).reshape(packed.shape[0], -1)
