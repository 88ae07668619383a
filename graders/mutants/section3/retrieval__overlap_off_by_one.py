"""Mutant: each chunk starts one character too late, so neighbours share overlap - 1 characters.

Misconception: the next chunk "starts where the overlap starts, plus one", as if the
end index were inclusive: start = end - overlap + 1. With overlap = 0 it even leaves a
one-character gap that no chunk covers.
"""


def chunk(text, size, overlap):
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"chunk: need size >= 1 and 0 <= overlap < size, got size={size}, overlap={overlap}")
    spans = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        spans.append((start, end))
        if end == len(text):
            break
        start = end - overlap + 1
    return spans
