"""Mutant: RoPE rotates the neighbouring pairs (2j, 2j + 1), GPT-J / Meta's complex layout.

Misconception: RoPE is RoPE, whichever features form the pairs. Both layouts are valid
rotary embeddings, but the same q/k weights give different outputs: a Llama checkpoint
in Hugging Face's half-split layout run with interleaved RoPE produces garbage.
"""


def rope(x, positions, theta=10000.0):
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"d must be even, got {d}")
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    frequencies = theta ** (-2.0 * torch.arange(d // 2, dtype=compute) / d)
    angles = torch.as_tensor(positions).to(compute)[..., None] * frequencies
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., 0::2].to(compute), x[..., 1::2].to(compute)
    out = torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    return out.flatten(-2).to(x.dtype)
