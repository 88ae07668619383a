"""Grader-only oracles for exercise 3.3 (they would hand the answer over, so they do not
ship): chunk spans and the prompt in closed form, and the three ranking metrics twice:
in closed form in float64 (what the learner's values are held to, at 1e-9), and by
torchmetrics' functional retrieval metrics (which compute in float32), with the kit's
conventions (rankings shorter than k, queries with nothing relevant) laid out around
them; the graders check the two against each other on every case.
"""

from __future__ import annotations

import math

import torch
from torchmetrics.functional.retrieval import (
    retrieval_normalized_dcg,
    retrieval_recall,
    retrieval_reciprocal_rank,
)

from llmkit.support import load_support

support = load_support("3.3")


def chunk_spans(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Closed form: n spans, n = 1 + ceil((len - size) / step) for a text longer than
    size, span i = (i * step, min(i * step + size, len))."""
    length, step = len(text), size - overlap
    if length == 0:
        return []
    count = 1 if length <= size else 1 + -(-(length - size) // step)
    return [(i * step, min(i * step + size, length)) for i in range(count)]


def rag_prompt(question: str, passages: list[str], max_chars: int) -> tuple[str, list[int]]:
    """The longest admissible prefix, found by trying every prefix length."""
    admissible: list[tuple[int, str]] = []
    for i, passage in enumerate(passages):
        text = " ".join(passage.split())
        if text and text not in [t for _, t in admissible]:
            admissible.append((i, text))
    best = 0
    for n in range(len(admissible) + 1):
        if len(support.format_rag_prompt(question, [t for _, t in admissible[:n]])) <= max_chars:
            best = n
        else:
            break
    return support.format_rag_prompt(question, [t for _, t in admissible[:best]]), [
        i for i, _ in admissible[:best]
    ]


def _grades(judged) -> dict:
    return dict(judged) if isinstance(judged, dict) else dict.fromkeys(judged, 1)


def _preds_and_grades(ranking, judged, k: int | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One query as torchmetrics sees it: every candidate with a score (the ranking
    first, best highest; then unjudged padding up to k, so that positions the ranking
    does not fill hold nothing relevant; then the judged ids never retrieved, lowest),
    its grade, and the top_k to use (0: an empty ranking with k = None, which scores 0)."""
    grades = _grades(judged)
    ranking = list(ranking)
    depth = len(ranking) if k is None else k
    padding = [("pad", j) for j in range(max(0, depth - len(ranking)))]
    missed = [doc for doc in grades if doc not in set(ranking)]
    candidates = ranking + padding + missed
    preds = torch.arange(len(candidates), 0, -1, dtype=torch.float64)
    target = torch.tensor(
        [float(grades.get(c, 0)) if not isinstance(c, tuple) else 0.0 for c in candidates],
        dtype=torch.float64,
    )
    return preds, target, depth


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values))


def recall_at_k_torchmetrics(ranked, relevant, k: int) -> float:
    values = []
    for ranking, judged in zip(ranked, relevant, strict=True):
        preds, target, top = _preds_and_grades(ranking, judged, k)
        binary = (target > 0).long()
        values.append(float(retrieval_recall(preds, binary, top_k=top)) if top and binary.any() else 0.0)
    return _mean(values)


def mrr_torchmetrics(ranked, relevant, k: int | None = None) -> float:
    values = []
    for ranking, judged in zip(ranked, relevant, strict=True):
        preds, target, top = _preds_and_grades(ranking, judged, k)
        binary = (target > 0).long()
        values.append(
            float(retrieval_reciprocal_rank(preds, binary, top_k=top)) if top and binary.any() else 0.0
        )
    return _mean(values)


def ndcg_at_k_torchmetrics(ranked, relevance, k: int) -> float:
    values = []
    for ranking, judged in zip(ranked, relevance, strict=True):
        preds, target, top = _preds_and_grades(ranking, judged, k)
        values.append(
            float(retrieval_normalized_dcg(preds, target, top_k=top)) if top and (target > 0).any() else 0.0
        )
    return _mean(values)


# --- closed forms, float64 ------------------------------------------------------------


def _ids(judged) -> set:
    return {doc for doc, grade in _grades(judged).items() if grade > 0}


def recall_at_k(ranked, relevant, k: int) -> float:
    return _mean(
        [len(_ids(j) & set(r[:k])) / len(_ids(j)) if _ids(j) else 0.0 for r, j in zip(ranked, relevant)]
    )


def mrr(ranked, relevant, k: int | None = None) -> float:
    def one(ranking, wanted):
        ranks = [rank for rank, doc in enumerate(ranking[:k], start=1) if doc in wanted]
        return 1.0 / ranks[0] if ranks else 0.0

    return _mean([one(list(r), _ids(j)) for r, j in zip(ranked, relevant)])


def _dcg(gains) -> float:
    return math.fsum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1))


def ndcg_at_k(ranked, relevance, k: int) -> float:
    def one(ranking, grades):
        ideal = _dcg(sorted((g for g in grades.values() if g > 0), reverse=True)[:k])
        return _dcg([grades.get(doc, 0) for doc in ranking[:k]]) / ideal if ideal > 0 else 0.0

    return _mean([one(list(r), _grades(j)) for r, j in zip(ranked, relevance)])
