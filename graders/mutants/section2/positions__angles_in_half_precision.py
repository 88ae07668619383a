"""Mutant: the frequencies and angles are computed in x's dtype (float16 / bfloat16 too).

Misconception: computing in the input's dtype is the careful thing to do. bfloat16 keeps
8 significant bits: position 1001 becomes 1000, and m * w for late positions is off by
whole radians. (Hugging Face computes these angles in float32 for exactly this reason.)
"""


def rope(x, positions, theta=10000.0):
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"d must be even, got {d}")
    half = d // 2
    frequencies = theta ** (-2.0 * torch.arange(half, dtype=x.dtype) / d)
    angles = torch.as_tensor(positions).to(x.dtype)[..., None] * frequencies
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
