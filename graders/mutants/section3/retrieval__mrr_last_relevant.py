"""Mutant: MRR takes the rank of the last relevant document in the top k, not the first.

Misconception: the loop over the ranking keeps updating the reciprocal rank at every
relevant document instead of stopping at the first one.
"""


def mrr(ranked, relevant, k=None):
    _check_queries(ranked, relevant)
    if k is not None and k < 1:
        raise ValueError(f"mrr: k must be >= 1 or None, got {k}")
    total = 0.0
    for ranking, judged in zip(ranked, relevant):
        wanted = _relevant_ids(judged)
        reciprocal = 0.0
        for rank, doc in enumerate(ranking[:k], start=1):
            if doc in wanted:
                reciprocal = 1.0 / rank
        total += reciprocal
    return total / len(ranked)
