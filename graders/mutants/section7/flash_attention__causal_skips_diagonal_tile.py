"""Mutant: causal key tiles stop one tile early, before the tile holding the diagonal.

Misconception: "skip the future" read as "keys before q_start only". The tile
that contains the diagonal has keys each query must see (itself included); the
first query tile then sees no key at all (0 / 0).
"""


def _key_tile_starts(q_start, q_end, n, block_k, causal):
    return range(0, q_start if causal else n, block_k)
