"""Mutant: recall@k is 1 when any relevant document is in the top k.

Misconception: recall@k and the hit rate (success@k) are the same number. They are
only when each query has one relevant document; with four, finding one is recall 0.25.
"""


def recall_at_k(ranked, relevant, k):
    _check_queries(ranked, relevant)
    if k < 1:
        raise ValueError(f"recall_at_k: k must be >= 1, got {k}")
    hits = 0.0
    for ranking, judged in zip(ranked, relevant):
        wanted = _relevant_ids(judged)
        if any(doc in wanted for doc in ranking[:k]):
            hits += 1.0
    return hits / len(ranked)
