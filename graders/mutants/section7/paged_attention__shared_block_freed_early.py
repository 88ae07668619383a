"""Mutant: free() puts every block of the sequence back on the free list, whatever its
reference count.

Misconception: freeing a sequence frees its blocks. With fork() a block can be in
several tables; the freed sequence drops only its own reference, and the block stays
taken while a forked sibling still reads it.
"""


def free(self, seq_id: int) -> None:
    table = self._known(seq_id)
    for b in table:
        self._refs[b] = 0
        self._free.append(b)
    del self._tables[seq_id], self._lengths[seq_id]


BlockManager.free = free  # noqa: F821 - the reference's class
