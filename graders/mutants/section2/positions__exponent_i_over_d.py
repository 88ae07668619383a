"""Mutant: the frequency of pair i is base ** (-i / d), in the table and in RoPE.

Misconception: "the exponent is i/d" with i the pair index. The paper's 2i is the even
column's index; with i/d the frequencies stop at 1/sqrt(base) and the slow pairs that tell
far-apart positions apart are missing.
"""


def sinusoidal_positions(T, d, base=10000.0):
    if T < 0 or d < 1:
        raise ValueError(f"bad T={T} or d={d}")
    pair = torch.arange(d, dtype=torch.float64) // 2
    angles = torch.arange(T, dtype=torch.float64)[:, None] * base ** (-pair / d)
    return torch.where(torch.arange(d) % 2 == 0, angles.sin(), angles.cos()).to(torch.float32)


def rope(x, positions, theta=10000.0):
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"d must be even, got {d}")
    half = d // 2
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    frequencies = theta ** (-torch.arange(half, dtype=compute) / d)
    angles = torch.as_tensor(positions).to(compute)[..., None] * frequencies
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., :half].to(compute), x[..., half:].to(compute)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)
