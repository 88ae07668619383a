"""Mutant: the causal mask compares the key's index within its tile with the query's
global index.

Misconception: offs_n = tl.arange(0, BLOCK_N) is the key index; it is only the offset
inside the tile: the key's index is start_n + offs_n. Queries then see future keys on
every diagonal block but the first.
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        '            s = tl.where(cols[None, :] <= offs_m[:, None], s, float("-inf"))',
        '            s = tl.where(offs_n[None, :] <= offs_m[:, None], s, float("-inf"))',
    ),
]
