"""Mutant: the table is [all the sins | all the cosines] instead of sin, cos, sin, cos, ...

Misconception: the layout of the columns does not matter, and torch.cat([sin, cos]) is
what several tutorials and tensor2tensor write. It is a different table from the paper's.
"""


def sinusoidal_positions(T, d, base=10000.0):
    if T < 0 or d < 1:
        raise ValueError(f"bad T={T} or d={d}")
    pairs = (d + 1) // 2
    frequencies = base ** (-2.0 * torch.arange(pairs, dtype=torch.float64) / d)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=1)[:, :d].to(torch.float32)
