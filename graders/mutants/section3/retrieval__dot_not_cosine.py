"""Mutant: documents ranked by the raw dot product, without normalising.

Misconception: embeddings come normalised, so the dot product is the cosine. Many
models return vectors of varying length; then the longest documents win whatever the
query.
"""


def cosine_top_k(queries, docs, k):
    if k < 0:
        raise ValueError(f"cosine_top_k: k must be >= 0, got {k}")
    scores = queries @ docs.T
    ordered, indices = torch.sort(scores, dim=-1, descending=True, stable=True)
    k = min(k, docs.shape[0])
    return ordered[:, :k], indices[:, :k]
