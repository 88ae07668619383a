"""Exercise 3.3 — retrieval for RAG (reference solution)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import torch

# --- chunking ---------------------------------------------------------------------


def chunk(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"chunk: need size >= 1 and 0 <= overlap < size, got size={size}, overlap={overlap}")
    n, step = len(text), size - overlap
    spans: list[tuple[int, int]] = []
    start = 0
    while start < n:
        end = min(start + size, n)
        spans.append((start, end))
        if end == n:
            break
        start += step
    return spans


# --- BM25 -------------------------------------------------------------------------


class BM25:
    def __init__(self, corpus: list[list[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        n_docs = len(corpus)
        if n_docs == 0:
            raise ValueError("BM25: the corpus has no documents")
        lengths = np.array([len(doc) for doc in corpus], dtype=np.float64)
        if lengths.sum() == 0:
            raise ValueError("BM25: the corpus has no tokens")
        avgdl = lengths.sum() / n_docs

        # Postings: for every word, the documents that hold it and how often.
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for i, doc in enumerate(corpus):
            for word, count in Counter(doc).items():
                docs, counts = postings.setdefault(word, ([], []))
                docs.append(i)
                counts.append(count)

        idf = {
            word: math.log(n_docs - len(docs) + 0.5) - math.log(len(docs) + 0.5)
            for word, (docs, _) in postings.items()
        }
        floor = epsilon * sum(idf.values()) / len(idf)  # the mean is taken before flooring
        self.idf = {word: floor if value < 0 else value for word, value in idf.items()}

        # Each posting's whole contribution, computed once: scores() only adds them up.
        length_norm = k1 * (1.0 - b + b * lengths / avgdl)
        self.n_docs = n_docs
        self.avgdl = float(avgdl)
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for word, (docs, counts) in postings.items():
            ids = np.asarray(docs, dtype=np.int64)
            tf = np.asarray(counts, dtype=np.float64)
            self._postings[word] = (ids, self.idf[word] * tf * (k1 + 1.0) / (tf + length_norm[ids]))

    def scores(self, query: list[str]) -> np.ndarray:
        out = np.zeros(self.n_docs, dtype=np.float64)
        for word in query:  # a repeated query word counts every time
            posting = self._postings.get(word)
            if posting is not None:
                ids, contributions = posting
                out[ids] += contributions  # ids are distinct within one posting
        return out


# --- dense retrieval -------------------------------------------------------------


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    weights = attention_mask.to(token_embeddings.dtype).unsqueeze(-1)  # (B, T, 1)
    total = (token_embeddings * weights).sum(dim=1)
    count = weights.sum(dim=1).clamp(min=1.0)  # a row with no real token: 0 / 1 = zeros
    return total / count


def cosine_top_k(queries: torch.Tensor, docs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    if k < 0:
        raise ValueError(f"cosine_top_k: k must be >= 0, got {k}")
    q = queries / queries.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    d = docs / docs.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    scores = q @ d.T
    k = min(k, docs.shape[0])
    # A stable sort keeps equal scores in document order: ties go to the smaller index.
    ordered, indices = torch.sort(scores, dim=-1, descending=True, stable=True)
    return ordered[:, :k], indices[:, :k]


# --- ranking metrics --------------------------------------------------------------


def _relevant_ids(relevant) -> set:
    if isinstance(relevant, dict):
        return {doc for doc, grade in relevant.items() if grade > 0}
    return set(relevant)


def _check_queries(ranked, relevant) -> None:
    if len(ranked) == 0:
        raise ValueError("no queries")
    if len(ranked) != len(relevant):
        raise ValueError(f"{len(ranked)} rankings but {len(relevant)} relevance judgements")


def recall_at_k(ranked: list[list[int]], relevant: list, k: int) -> float:
    _check_queries(ranked, relevant)
    if k < 1:
        raise ValueError(f"recall_at_k: k must be >= 1, got {k}")
    total = 0.0
    for ranking, judged in zip(ranked, relevant):
        wanted = _relevant_ids(judged)
        if wanted:
            total += len(wanted.intersection(ranking[:k])) / len(wanted)
    return total / len(ranked)


def mrr(ranked: list[list[int]], relevant: list, k: int | None = None) -> float:
    _check_queries(ranked, relevant)
    if k is not None and k < 1:
        raise ValueError(f"mrr: k must be >= 1 or None, got {k}")
    total = 0.0
    for ranking, judged in zip(ranked, relevant):
        wanted = _relevant_ids(judged)
        for rank, doc in enumerate(ranking[:k], start=1):
            if doc in wanted:
                total += 1.0 / rank
                break
    return total / len(ranked)


def ndcg_at_k(ranked: list[list[int]], relevance: list, k: int) -> float:
    _check_queries(ranked, relevance)
    if k < 1:
        raise ValueError(f"ndcg_at_k: k must be >= 1, got {k}")
    total = 0.0
    for ranking, judged in zip(ranked, relevance):
        grades = dict(judged) if isinstance(judged, dict) else dict.fromkeys(judged, 1)
        dcg = sum(grades.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranking[:k], start=1))
        best = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
        idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(best, start=1))
        if idcg > 0:
            total += dcg / idcg
    return total / len(ranked)


# --- the prompt -------------------------------------------------------------------

RAG_INSTRUCTIONS = (
    "Answer the question using only the numbered passages below, and cite the passages you use "
    "like [1]. If they do not hold the answer, say that you do not know."
)


def format_rag_prompt(question: str, passages: list[str]) -> str:
    numbered = "".join(f"[{i}] {passage}\n" for i, passage in enumerate(passages, start=1))
    return f"{RAG_INSTRUCTIONS}\n\n{numbered}\nQuestion: {question}\nAnswer:"


def build_rag_prompt(question: str, passages: list[str], max_chars: int) -> tuple[str, list[int]]:
    if len(format_rag_prompt(question, [])) > max_chars:
        raise ValueError(f"build_rag_prompt: even the prompt without passages is over max_chars={max_chars}")
    kept: list[str] = []
    used: list[int] = []
    for i, passage in enumerate(passages):
        clean = " ".join(passage.split())
        if not clean or clean in kept:
            continue
        if len(format_rag_prompt(question, [*kept, clean])) > max_chars:
            break  # the ranking decides: a later, shorter passage does not jump the queue
        kept.append(clean)
        used.append(i)
    return format_rag_prompt(question, kept), used
