"""Mutant: nDCG's ideal DCG sorts the grades of the retrieved documents only.

Misconception: "the ideal ranking" is the retrieved list in its best order. Then a
system that misses every highly relevant document but orders what it found well
scores 1: the ideal must come from all the judged documents of the query.
"""


def ndcg_at_k(ranked, relevance, k):
    _check_queries(ranked, relevance)
    if k < 1:
        raise ValueError(f"ndcg_at_k: k must be >= 1, got {k}")
    total = 0.0
    for ranking, judged in zip(ranked, relevance):
        grades = dict(judged) if isinstance(judged, dict) else dict.fromkeys(judged, 1)
        gains = [grades.get(doc, 0) for doc in ranking[:k]]
        dcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1))
        idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(sorted(gains, reverse=True), start=1))
        if idcg > 0:
            total += dcg / idcg
    return total / len(ranked)
