"""Mutant: rotate_half written as [x2, -x1], so every pair turns by -m w instead of +m w.

Misconception: the sign inside rotate_half is arbitrary. The scores still depend on m - n
only, and norms are kept, but the result is the encoding of position -m: another model's
convention, not Llama's.
"""


def rope(x, positions, theta=10000.0):
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"d must be even, got {d}")
    half = d // 2
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    frequencies = theta ** (-2.0 * torch.arange(half, dtype=compute) / d)
    angles = torch.as_tensor(positions).to(compute)[..., None] * frequencies
    cos, sin = torch.cat([angles.cos()] * 2, dim=-1), torch.cat([angles.sin()] * 2, dim=-1)
    xc = x.to(compute)
    rotated_half = torch.cat([xc[..., half:], -xc[..., :half]], dim=-1)
    return (xc * cos + rotated_half * sin).to(x.dtype)
