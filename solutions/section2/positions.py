"""Exercise 2.2 (reference): sinusoidal position table and rotary embeddings (RoPE).

Same API as exercises/section2/positions.py, whose docstrings state the conventions.
"""

from __future__ import annotations

import torch


def sinusoidal_positions(T: int, d: int, base: float = 10000.0) -> torch.Tensor:
    if T < 0 or d < 1:
        raise ValueError(f"sinusoidal_positions needs T >= 0 and d >= 1, got T={T}, d={d}")
    # Computed in float64 (exact enough for any T), returned as float32.
    pair = torch.arange(d, dtype=torch.float64) // 2  # column j belongs to pair i = j // 2
    frequencies = base ** (-2.0 * pair / d)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * frequencies  # (T, d)
    is_even = torch.arange(d) % 2 == 0
    table = torch.where(is_even, angles.sin(), angles.cos())
    return table.to(torch.float32)


def rope(x: torch.Tensor, positions: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"rope rotates pairs of features: the last dimension must be even, got d={d}")
    half = d // 2
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    frequencies = theta ** (-2.0 * torch.arange(half, dtype=compute) / d)  # (d/2,)
    angles = torch.as_tensor(positions).to(compute)[..., None] * frequencies  # (..., T, d/2)
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., :half].to(compute), x[..., half:].to(compute)
    rotated = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    return rotated.to(x.dtype)
