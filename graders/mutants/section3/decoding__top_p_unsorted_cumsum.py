"""Mutant: top-p sums the probabilities in vocabulary order, without sorting them first.

Misconception: the cumulative sum looks like the whole algorithm, and the sort is easy to
forget; then the "nucleus" is whatever tokens happen to have small ids, not the most
probable ones.
"""


def top_p_filter(logits, p, min_keep=1):
    if not 0 <= p <= 1:
        raise ValueError(f"top_p must be in [0, 1], got {p}")
    probs = logits.softmax(dim=-1)
    drop = probs.cumsum(dim=-1) - probs >= p
    drop[..., :min_keep] = False
    return logits.masked_fill(drop, float("-inf"))
