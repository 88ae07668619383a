"""Mutant: the top k taken with torch.topk, which leaves tied documents in any order.

Misconception: topk returns ties in index order, like a stable sort. It does not
promise any order (on CPU it mixes them), so tied documents, such as two copies of one
chunk, come back in an order that changes with the rest of the scores.
"""

import torch.nn.functional as F


def cosine_top_k(queries, docs, k):
    if k < 0:
        raise ValueError(f"cosine_top_k: k must be >= 0, got {k}")
    scores = F.normalize(queries, dim=-1, eps=1e-8) @ F.normalize(docs, dim=-1, eps=1e-8).T
    values, indices = torch.topk(scores, min(k, docs.shape[0]), dim=-1)
    return values, indices
