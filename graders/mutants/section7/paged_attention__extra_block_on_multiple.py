"""Mutant: a sequence of n tokens gets n // block_size + 1 blocks, one too many when n
is a multiple of block_size.

Misconception: "n // block_size full blocks, plus one for the rest" reads like
ceil(n / block_size), but when n fills its blocks exactly there is no rest: the extra
block is empty, and a cache that should fit its sequences runs out of blocks early.
"""


def _blocks_for(self, n_tokens: int) -> int:
    return n_tokens // self.block_size + 1


BlockManager._blocks_for = _blocks_for  # noqa: F821 - the reference's class
