"""Mutant: cos and sin are float32 tables and x * cos is returned as it comes out.

Misconception: multiplying by x keeps x's dtype. torch promotes float16 / bfloat16 times
float32 to float32: the caller gets a float32 tensor (twice the memory, and a dtype clash
at the next matmul with bfloat16 weights).
"""


def rope(x, positions, theta=10000.0):
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"d must be even, got {d}")
    half = d // 2
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    frequencies = theta ** (-2.0 * torch.arange(half, dtype=compute) / d)
    angles = torch.as_tensor(positions).to(compute)[..., None] * frequencies
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., :half].to(compute), x[..., half:].to(compute)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
