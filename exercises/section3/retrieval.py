"""Exercise 3.3 — retrieval for RAG: chunks, BM25, dense retrieval, ranking metrics, the prompt.

Replace every ``raise NotImplementedError`` with your implementation, then run

    pytest exercises/section3/test_retrieval.py      (or: llmkit check 3.3)

Retrieval-augmented generation puts the passages most relevant to a question into
the model's prompt. Before a model sees a word, five pieces decide which passages
those are, and this exercise is those pieces:

* ``chunk``: cut a long text into overlapping character spans (the passages);
* ``BM25``: the lexical ranking of search engines, scores equal to ``rank_bm25``'s
  ``BM25Okapi``;
* ``mean_pool`` and ``cosine_top_k``: dense retrieval, as sentence-transformers
  does it: one vector per text from its token vectors, then the nearest by cosine;
* ``recall_at_k``, ``mrr``, ``ndcg_at_k``: how good a ranking is, given labels;
* ``build_rag_prompt``: the passages that fit, numbered, in a prompt.

``RAG_INSTRUCTIONS`` and ``format_rag_prompt`` (the prompt's layout) are given: keep
them as they are.

Banned here (a static scan and a runtime trap enforce it): ``rank_bm25.BM25Okapi``,
``rank_bm25.BM25`` and ``bm25s.BM25``, the libraries the tests compare you with.
numpy, torch, ``collections`` and ``math`` are all you need.
"""

from __future__ import annotations

import math  # noqa: F401  (math.log, math.log2)
from collections import Counter  # noqa: F401  (term frequencies)

import numpy as np  # noqa: F401
import torch

# --- chunking ---------------------------------------------------------------------


def chunk(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` (``text[start:end]``, end exclusive) that cover ``text``.

    * The first span starts at 0; each next one starts ``size - overlap`` characters
      after the previous one, so neighbours share exactly ``overlap`` characters.
    * Every span is ``size`` characters long except the last, which ends at
      ``len(text)``. Stop after the first span that reaches the end: no span may lie
      inside the one before it.
    * An empty text has no spans: ``[]``.
    * ``size >= 1`` and ``0 <= overlap < size``, else ValueError.

    chunk("abcdefghij", 4, 1)  -> [(0, 4), (3, 7), (6, 10)]
    chunk("abcdefghijk", 4, 1) -> [(0, 4), (3, 7), (6, 10), (9, 11)]
    chunk("abc", 4, 1)         -> [(0, 3)]
    """
    raise NotImplementedError


# --- BM25 -------------------------------------------------------------------------


class BM25:
    """Okapi BM25 over a tokenised corpus, equal to ``rank_bm25.BM25Okapi(corpus, k1=k1,
    b=b, epsilon=epsilon).get_scores(query)``.

    ``BM25(corpus, k1=1.5, b=0.75, epsilon=0.25)``: ``corpus`` is a list of documents,
    each a list of tokens (strings); empty documents are allowed. ValueError if the
    corpus has no document or no token at all.

    With N documents, n(w) the number of documents that hold the word w, |D| the
    number of tokens of document D, avgdl the mean of |D| and f(w, D) the count of w
    in D:

        idf(w) = ln(N - n(w) + 0.5) - ln(n(w) + 0.5)
        score(D, Q) = sum over the query's tokens q of
                      idf(q) * f(q, D) * (k1 + 1) / (f(q, D) + k1 * (1 - b + b * |D| / avgdl))

    * No ``1 +`` inside the log: Lucene, Elasticsearch and bm25s' default use
      ln(1 + (N - n + 0.5) / (n + 0.5)), which is never negative. This one is negative
      for a word in more than half of the documents, and rank_bm25 floors it:
    * the floor: every word whose idf is < 0 gets ``epsilon * mean_idf``, where
      mean_idf is the mean idf of all the distinct words of the corpus, taken BEFORE
      flooring. An idf of exactly 0 stays 0.
    * A query word repeated counts every time; a word the corpus does not hold adds 0.
    * An empty document scores 0 (with b = 1, rank_bm25 computes 0 / 0 there and returns NaN).

    ``scores(query)`` takes a list of tokens and returns a float64 numpy array of
    shape (N,), one score per document in corpus order.

    Speed: the graders score 10,000 documents and allow 3x the time of ``bm25s``
    (which precomputes everything) and half the time of ``rank_bm25`` (which loops over
    the documents for every query word). Do the work once, in ``__init__``: for every word
    keep the documents that hold it and their whole contribution to the score, so
    that ``scores`` only adds up the query words' entries.
    """

    def __init__(self, corpus: list[list[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        raise NotImplementedError

    def scores(self, query: list[str]) -> np.ndarray:
        raise NotImplementedError


# --- dense retrieval -------------------------------------------------------------


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """One vector per text: the mean of its real tokens' vectors (sentence-transformers'
    mean pooling).

    token_embeddings: (B, T, d) float; attention_mask: (B, T), bool or 0/1 numbers,
    1/True for a real token and 0/False for padding. Returns (B, d) in the dtype of
    token_embeddings. Padding positions hold whatever the model left there (not
    zeros): they must not count, in the sum or in the divisor. A text with no real
    token at all gets a row of zeros, not NaN.
    """
    raise NotImplementedError


def cosine_top_k(queries: torch.Tensor, docs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` documents nearest to each query by cosine similarity.

    queries: (Q, d), docs: (N, d), the same float dtype. cosine(q, x) =
    q . x / (max(|q|, 1e-8) * max(|x|, 1e-8)): each vector is divided by its norm
    (clamped at 1e-8, so a zero vector scores 0 against everything) before the dot
    product. Embedding models do not return unit vectors: a plain dot product
    favours long vectors.

    Returns ``(scores, indices)``, both (Q, min(k, N)): scores in the input dtype, best
    first; indices int64 into ``docs``. k >= 0 (ValueError if negative); k > N returns
    all N.

    Ties: equal scores are ordered by document index, the smaller first.
    ``torch.topk`` does not promise any order among ties (on CPU it mixes them); a
    stable sort, ``torch.sort(..., descending=True, stable=True)``, keeps it.
    """
    raise NotImplementedError


# --- ranking metrics --------------------------------------------------------------
# ranked[i]: the ids the system returned for query i, best first, without repeats.
# relevant[i]: the ids relevant to query i: a list (or set) of ids, or a dict
# {id: grade} in which the ids with grade > 0 are the relevant ones.
# Each metric is the mean over the queries, as a Python float; a query with nothing
# relevant counts as 0 in that mean. No query at all, or len(ranked) !=
# len(relevant): ValueError. k >= 1 (ValueError otherwise). A ranking shorter than k
# is fine: the positions it does not fill hold nothing relevant.


def recall_at_k(ranked: list[list[int]], relevant: list, k: int) -> float:
    """Mean over queries of (relevant ids among ranked[i][:k]) / (all relevant ids of query i).

    Not the hit rate (1 if any relevant id is in the top k): with 4 relevant
    documents and 1 of them retrieved, recall@k is 0.25.
    """
    raise NotImplementedError


def mrr(ranked: list[list[int]], relevant: list, k: int | None = None) -> float:
    """Mean reciprocal rank: mean over queries of 1 / rank of the FIRST relevant id in
    ranked[i][:k] (ranks count from 1), or 0 if there is none. ``k=None`` looks at
    the whole ranking."""
    raise NotImplementedError


def ndcg_at_k(ranked: list[list[int]], relevance: list, k: int) -> float:
    """Normalised discounted cumulative gain at k, with graded relevance.

    relevance[i]: {id: grade} (grades >= 0; an id absent has grade 0), or a list of
    ids (grade 1 each).

        DCG@k  = sum over ranks r = 1 .. k of grade(ranked[i][r - 1]) / log2(r + 1)
        IDCG@k = the same sum over the k largest grades of ALL the judged ids of the
                 query (the ideal ranking), not only those retrieved
        nDCG@k = DCG@k / IDCG@k, and 0 when IDCG@k is 0

    Linear gains (the grade itself), as trec_eval and scikit-learn's ``ndcg_score``,
    not 2**grade - 1.
    """
    raise NotImplementedError


# --- the prompt (given: keep these as they are) -----------------------------------

RAG_INSTRUCTIONS = (
    "Answer the question using only the numbered passages below, and cite the passages you use "
    "like [1]. If they do not hold the answer, say that you do not know."
)


def format_rag_prompt(question: str, passages: list[str]) -> str:
    """The prompt's layout: the instructions, the passages numbered [1], [2], ..., one
    per line, then the question."""
    numbered = "".join(f"[{i}] {passage}\n" for i, passage in enumerate(passages, start=1))
    return f"{RAG_INSTRUCTIONS}\n\n{numbered}\nQuestion: {question}\nAnswer:"


def build_rag_prompt(question: str, passages: list[str], max_chars: int) -> tuple[str, list[int]]:
    """The prompt for ``question`` with as many of the ranked ``passages`` as fit in
    ``max_chars`` characters. Returns ``(prompt, used)``: ``prompt ==
    format_rag_prompt(question, kept)``, and ``used`` the indices into ``passages`` of
    the kept ones, in order (kept[j] came from passages[used[j]]).

    * Each passage is cleaned first: ``" ".join(passage.split())`` (one line, single
      spaces). A passage empty after cleaning, or equal to one already kept (two
      overlapping chunks can be retrieved twice), is skipped and gets no number.
    * Passages go in in the given order, whole, while ``len(prompt) <= max_chars``
      for the WHOLE prompt (instructions, numbers and question included). The first
      passage that would not fit ends the list: a later, shorter one does not jump
      the queue.
    * ValueError if even the prompt without passages is longer than ``max_chars``.
    """
    raise NotImplementedError
