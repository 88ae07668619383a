"""Mutant: append() only ever adds a block when the last one is full; a shared, partly
filled last block is written in place.

Misconception: forked sequences share their blocks, so appending needs nothing new
until the block is full. The new token's key and value would then be written into a
block the other sequence reads, overwriting its next token's slot.
"""


def append(self, seq_id: int):
    table = self._known(seq_id)
    if self._lengths[seq_id] % self.block_size == 0:
        table.extend(self._take(1))
    self._lengths[seq_id] += 1
    return None


BlockManager.append = append  # noqa: F821 - the reference's class
