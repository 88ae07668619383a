"""Mutant: rope uses positions 0 .. T-1 whatever `positions` holds.

Misconception: the position of row t is t. It is while a whole sequence is encoded from
its start; not for a KV cache's next token (position T0), packed sequences or a batch
whose rows start at different offsets.
"""

_reference_rope = rope


def rope(x, positions, theta=10000.0):
    return _reference_rope(x, torch.arange(x.shape[-2]), theta)
