"""Mutant: a chunk starts at every multiple of the step below len(text), so the last
ones lie inside the chunk before them.

Misconception: range(0, len(text), size - overlap) looks like the whole algorithm. It
keeps going after a chunk has reached the end of the text, and the index then holds
tail passages that repeat what their neighbour already says.
"""


def chunk(text, size, overlap):
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"chunk: need size >= 1 and 0 <= overlap < size, got size={size}, overlap={overlap}")
    return [(start, min(start + size, len(text))) for start in range(0, len(text), size - overlap)]
