"""Support for exercise 3.3 (retrieval for RAG): the kit's corpus, the inputs its tests
draw, the library oracles (rank_bm25, torch's embedding_bag and cosine_similarity), the
checks that hold your outputs to the stated rules, the named misconceptions and the
figure. It ships to learners: nothing here solves the exercise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import rank_bm25
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    CheckFailure,
    Draw,
    Misconception,
    Misconceptions,
    as_plain_tensor,
    assert_close,
    tolerance_for,
)

# --- the kit's corpus: topics -> words -> documents, queries and relevance labels ----

_CONSONANTS, _VOWELS = "bdfgklmnprstvz", "aeiou"


def _words(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    """``n`` new pseudo-words of two or three syllables ("tavo", "remiku")."""
    out: list[str] = []
    while len(out) < n:
        syllables = rng.integers(2, 4)
        word = "".join(rng.choice(list(_CONSONANTS)) + rng.choice(list(_VOWELS)) for _ in range(syllables))
        if word not in taken:
            taken.add(word)
            out.append(word)
    return out


def _zipf(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


@dataclass(frozen=True)
class Corpus:
    """A generated retrieval collection.

    docs[i]: the tokens of document i; topics[i]: its topic. queries[j]: the tokens of
    query j, about query_topics[j]. qrels[j]: {doc id: grade} for query j: grade 2 for a
    document of the query's topic that holds one of its words, 1 for one of its topic
    that does not (relevant, but a lexical match cannot see it); other documents are
    not relevant (absent). common: the function words every topic uses;
    topic_words[t]: the words of topic t, most frequent first.
    """

    docs: list[list[str]]
    topics: list[int]
    queries: list[list[str]]
    query_topics: list[int]
    qrels: list[dict[int, int]]
    common: list[str]
    topic_words: list[list[str]]


def make_corpus(
    n_docs: int = 240,
    *,
    n_topics: int = 6,
    n_queries: int = 30,
    words_per_topic: int = 60,
    n_common: int = 40,
    doc_len: tuple[int, int] = (15, 40),
    topic_share: float = 0.35,
    seed: int = 0,
) -> Corpus:
    """A seeded toy collection: each document draws ``topic_share`` of its tokens from
    its topic's words (Zipf-distributed) and the rest from common words (Zipf too, so
    the most common ones are in most documents and get a negative BM25 idf). A query
    is 2 to 4 words of one topic, sometimes with a common word."""
    rng = np.random.default_rng(seed)
    taken: set[str] = set()
    common = _words(rng, n_common, taken)
    topic_words = [_words(rng, words_per_topic, taken) for _ in range(n_topics)]
    common_p, topic_p = _zipf(n_common, 1.0), _zipf(words_per_topic, 0.8)

    topics = rng.integers(n_topics, size=n_docs)
    lengths = rng.integers(doc_len[0], doc_len[1] + 1, size=n_docs)
    total = int(lengths.sum())
    vocabulary = np.array(common + [w for words in topic_words for w in words], dtype=object)
    topic_of_token = np.repeat(topics, lengths)
    own = n_common + topic_of_token * words_per_topic + rng.choice(words_per_topic, size=total, p=topic_p)
    shared = rng.choice(n_common, size=total, p=common_p)
    tokens = vocabulary[np.where(rng.random(total) < topic_share, own, shared)].tolist()
    bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    docs = [tokens[bounds[i] : bounds[i + 1]] for i in range(n_docs)]
    topics = topics.tolist()

    queries, query_topics, qrels = [], [], []
    for _ in range(n_queries):
        topic = int(rng.integers(n_topics))
        picked = rng.choice(words_per_topic, size=int(rng.integers(2, 5)), replace=False, p=topic_p)
        query = [topic_words[topic][i] for i in picked]
        if rng.random() < 0.3:
            query.append(common[int(rng.integers(3))])
        words = {topic_words[topic][i] for i in picked}
        labels = {i: 2 if words.intersection(docs[i]) else 1 for i in range(n_docs) if topics[i] == topic}
        queries.append(query)
        query_topics.append(topic)
        qrels.append(labels)
    return Corpus(docs, topics, queries, query_topics, qrels, common, topic_words)


def word_vectors(
    corpus: Corpus, dim: int = 32, *, noise: float = 2.5, seed: int = 0
) -> dict[str, np.ndarray]:
    """Stand-in token embeddings, no model needed: a topic word is its topic's direction
    plus noise (so two words of a topic are near each other even when they are not the
    same word: what lets dense retrieval find documents without a shared word); a
    common word is noise only."""
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((len(corpus.topic_words), dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    vectors = {w: rng.standard_normal(dim) / math.sqrt(dim) for w in corpus.common}
    for topic, words in enumerate(corpus.topic_words):
        for w in words:
            vectors[w] = directions[topic] + noise * rng.standard_normal(dim) / math.sqrt(dim)
    return vectors


def embed(
    texts: list[list[str]], vectors: dict[str, np.ndarray], *, pad_seed: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """What an encoder would hand to pooling: (B, T, d) float32 token vectors, padded to
    the longest text, and the (B, T) bool attention mask. Padding positions hold large
    junk vectors, as a model's outputs at padded positions are not zeros either."""
    dim = len(next(iter(vectors.values())))
    longest = max(1, max(len(t) for t in texts))
    rng = np.random.default_rng(pad_seed)
    out = 3.0 * rng.standard_normal((len(texts), longest, dim))
    mask = np.zeros((len(texts), longest), dtype=bool)
    for i, text in enumerate(texts):
        for j, word in enumerate(text):
            out[i, j] = vectors.get(word, np.zeros(dim))
            mask[i, j] = True
    return torch.from_numpy(out).float(), torch.from_numpy(mask)


# --- inputs the public tests and graders draw ------------------------------------


@st.composite
def chunk_case(draw_st, max_len: int = 60, max_size: int = 12):
    """(text, size, overlap): a text (empty included; spaces, newlines and characters outside
    ASCII count one each), 0 <= overlap < size."""
    text = draw_st(st.text(alphabet="ab cd\né漢🙂", max_size=max_len))
    size = draw_st(st.integers(1, max_size))
    return text, size, draw_st(st.integers(0, size - 1))


VOCABULARY = ["cat", "dog", "the", "a", "on", "mat", "sat"]


@st.composite
def bm25_case(draw_st, max_docs: int = 8, max_len: int = 7):
    """(corpus, query, k1, b, epsilon): a few documents over a small vocabulary (so that
    some words are in more than half of them: negative idf), empty documents included;
    the query may repeat words and hold one the corpus lacks."""
    vocab = VOCABULARY[: draw_st(st.integers(2, len(VOCABULARY)))]
    words = st.sampled_from(vocab)
    corpus = draw_st(st.lists(st.lists(words, max_size=max_len), min_size=1, max_size=max_docs))
    if not any(corpus):
        corpus[0] = [vocab[0]]
    query = draw_st(st.lists(st.sampled_from([*vocab, "unicorn"]), max_size=5))
    k1 = draw_st(st.sampled_from([0.5, 1.2, 1.5, 2.0]))
    b = draw_st(st.sampled_from([0.0, 0.5, 0.75, 1.0]))
    epsilon = draw_st(st.sampled_from([0.0, 0.25, 0.5]))
    return corpus, query, k1, b, epsilon


@st.composite
def pool_case(draw_st):
    """(B, T, d, dtype, mask kind, one row without tokens, seed) for mean_pool."""
    return (
        draw_st(st.integers(1, 4)),
        draw_st(st.integers(1, 6)),
        draw_st(st.integers(1, 5)),
        draw_st(FLOAT_DTYPES),
        draw_st(st.sampled_from(["bool", "int64", "float"])),
        draw_st(st.booleans()),
        draw_st(SEEDS),
    )


def pool_inputs(case) -> tuple[torch.Tensor, torch.Tensor]:
    """(token_embeddings, attention_mask) for a :func:`pool_case`: right padding of random
    lengths, padding positions holding large values."""
    b, t, d, dtype, kind, empty_row, seed = case
    rng = Draw(seed)
    emb = rng.tensor(b, t, d, dtype=dtype)
    lengths = torch.as_tensor(rng.integers(1, t + 1, size=b))
    if empty_row:
        lengths[0] = 0
    mask = torch.arange(t)[None, :] < lengths[:, None]
    emb = torch.where(mask[..., None], emb, (10.0 + 5.0 * rng.tensor(b, t, d, dtype=torch.float64)).to(dtype))
    as_kind = {"bool": mask, "int64": mask.long(), "float": mask.to(dtype)}
    return emb, as_kind[kind]


@st.composite
def top_k_case(draw_st):
    """(Q, N, d, k, dtype, with repeated documents, with a zero document, seed)."""
    n = draw_st(st.integers(1, 9))
    return (
        draw_st(st.integers(1, 4)),
        n,
        draw_st(st.integers(1, 6)),
        draw_st(st.integers(0, n + 2)),
        draw_st(FLOAT_DTYPES),
        draw_st(st.booleans()),
        draw_st(st.booleans()),
        draw_st(SEEDS),
    )


def top_k_inputs(case) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(queries, docs, k) for a :func:`top_k_case`. Repeated documents are exact copies
    of earlier rows (exact ties); vectors are not unit length."""
    q, n, d, k, dtype, repeats, zero_row, seed = case
    rng = Draw(seed)
    queries = rng.tensor(q, d, dtype=dtype, scale=3.0)
    docs = rng.tensor(n, d, dtype=dtype, scale=3.0) * torch.as_tensor(rng.integers(1, 5, size=(n, 1))).to(
        dtype
    )
    if repeats and n > 1:
        for i in range(1, n, 2):
            docs[i] = docs[int(rng.integers(0, i))]
    if zero_row:
        docs[int(rng.integers(0, n))] = 0.0
    return queries, docs, k


@st.composite
def ranking_case(draw_st, max_queries: int = 4, max_docs: int = 10):
    """(ranked, relevance, k): rankings (permutations of a prefix of a few ids) and
    graded labels {id: grade}, grades 0..3 (0 = judged not relevant), some relevant
    ids never retrieved, queries with nothing relevant included."""
    n_queries = draw_st(st.integers(1, max_queries))
    ranked, relevance = [], []
    for _ in range(n_queries):
        pool = draw_st(st.permutations(list(range(max_docs))))
        ranked.append(pool[: draw_st(st.integers(0, max_docs))])
        judged = draw_st(st.lists(st.integers(0, max_docs - 1), unique=True, max_size=5))
        relevance.append({doc: draw_st(st.integers(0, 3)) for doc in judged})
    return ranked, relevance, draw_st(st.integers(1, max_docs + 2))


# --- oracles ----------------------------------------------------------------------


def bm25_okapi(corpus, query, k1=1.5, b=0.75, epsilon=0.25) -> np.ndarray:
    """rank_bm25's BM25Okapi scores: the exercise's definition. An empty document scores
    0 (with b = 1 rank_bm25 computes 0 / 0 there and returns NaN)."""
    return _okapi_scores(rank_bm25.BM25Okapi(corpus, k1=k1, b=b, epsilon=epsilon), query)


def _okapi_scores(model, query) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.asarray(model.get_scores(query), dtype=np.float64)
    scores[np.asarray(model.doc_len) == 0] = 0.0
    return scores


def mean_pool_oracle(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean pooling by torch's embedding_bag: each text is a bag of its real tokens'
    rows, mode="mean" (an empty bag is a row of zeros)."""
    b, t, d = token_embeddings.shape
    keep = attention_mask.bool()
    rows = torch.arange(b * t)[keep.reshape(-1)]
    counts = keep.sum(dim=1)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)[:-1]])
    return F.embedding_bag(rows, token_embeddings.reshape(b * t, d), offsets, mode="mean")


def cosine_scores(queries: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
    """(Q, N) cosine similarities by torch's cosine_similarity (a zero vector scores 0)."""
    return F.cosine_similarity(queries[:, None, :], docs[None, :, :], dim=-1, eps=1e-8)


def top_k_oracle(queries, docs, k) -> tuple[torch.Tensor, torch.Tensor]:
    """The expected (scores, indices): cosine by torch, then a stable descending sort
    (ties to the smaller index). Scores in the inputs' dtype, ordered by float64 scores."""
    exact = cosine_scores(queries.double(), docs.double())
    _, order = torch.sort(exact, dim=-1, descending=True, stable=True)
    order = order[:, : min(k, docs.shape[0])]
    return cosine_scores(queries, docs).gather(1, order), order


# --- checks -----------------------------------------------------------------------


def _diagnose(suspects, accepts) -> str:
    found = suspects.first_match(accepts) if suspects is not None else None
    return f"{found}\n" if found else ""


def _spans(value) -> list[tuple[int, int]] | None:
    try:
        return [(int(s), int(e)) for s, e in value]
    except (TypeError, ValueError):
        return None


def chunk_problem(spans, text: str, size: int, overlap: int) -> str | None:
    """What breaks the stated rules of ``chunk`` in ``spans``, or None."""
    got = _spans(spans)
    if got is None:
        return f"expected a list of (start, end) pairs, got {str(spans)[:200]}"
    n = len(text)
    if n == 0:
        return None if got == [] else f"an empty text has no spans, got {got}"
    if not got:
        return "no spans for a non-empty text"
    if got[0][0] != 0:
        return f"the first span must start at 0: {got[0]}"
    for i, (start, end) in enumerate(got):
        if end != min(start + size, n):
            return f"span {i} {got[i]} should end at min(start + size, len(text)) = {min(start + size, n)}"
        if i and start != got[i - 1][0] + size - overlap:
            return (
                f"span {i} {got[i]} starts {start - got[i - 1][0]} after span {i - 1} {got[i - 1]}; "
                f"it should start size - overlap = {size - overlap} after it (to share {overlap} characters)"
            )
        if end == n and i != len(got) - 1:
            more = got[i + 1 :]
            return f"span {i} {got[i]} reaches the end of the text, yet {len(more)} more follow: {more}"
    if got[-1][1] != n:
        return f"the last span {got[-1]} must end at len(text) = {n}"
    return None


def check_chunks(spans, text: str, size: int, overlap: int, *, suspects=None) -> None:
    """``spans`` follow every rule of ``chunk`` for this text."""
    problem = chunk_problem(spans, text, size, overlap)
    if problem is None:
        return
    got = _spans(spans)
    raise CheckFailure(
        f"{_diagnose(suspects, lambda v: _spans(v) == got)}chunk(text of {len(text)} characters, "
        f"size={size}, overlap={overlap}) -> {str(got)[:200]}: {problem}",
        hint="start at 0, step size - overlap, each span min(start + size, len(text)) long, and stop "
        "after the first span that ends at len(text)",
    )


def check_bm25(scores, corpus, query, k1, b, epsilon, *, name: str, suspects=None) -> None:
    """``scores`` equal rank_bm25's BM25Okapi to float64 precision."""
    expected = bm25_okapi(corpus, query, k1, b, epsilon)
    arr = np.asarray(scores)
    if arr.dtype != np.float64:
        raise CheckFailure(f"{name}: scores must be a float64 array, got dtype {arr.dtype}")
    assert_close(
        torch.from_numpy(arr.copy()),
        torch.from_numpy(expected),
        name=name,
        hint="idf = ln(N - n + 0.5) - ln(n + 0.5); idf < 0 becomes epsilon * (mean idf of all words, "
        "before flooring); each query token adds idf * f * (k1 + 1) / (f + k1 * (1 - b + b * |D| / avgdl))",
        suspects=suspects,
    )


def check_top_k(
    got,
    queries,
    docs,
    k,
    *,
    name: str,
    strict_ties: bool = False,
    suspects_scores=None,
    suspects_indices=None,
) -> None:
    """``got = (scores, indices)`` is the top-k by cosine, best first. Indices may differ
    from the expected ones only between documents whose exact (float64) scores are
    within the tolerance: rounding decides those, and a matrix product may round two
    copies of one row differently. With ``strict_ties`` (for inputs whose products are
    exact in any order, so that equal documents get equal scores in any correct code)
    exactly equal scores must also come in index order, the smaller first."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailure(f"{name}: expected a pair (scores, indices), got {type(got).__name__}")
    scores, indices = as_plain_tensor(got[0], "scores"), as_plain_tensor(got[1], "indices")
    want_scores, want_indices = top_k_oracle(queries, docs, k)
    assert_close(
        scores,
        want_scores,
        name=f"{name} scores",
        hint="normalise every query and document to unit length (norm clamped at 1e-8) before the dot "
        "product; sort best first",
        suspects=suspects_scores,
    )
    if indices.dtype != torch.int64 or indices.shape != want_indices.shape:
        raise CheckFailure(
            f"{name} indices: expected int64 of shape {tuple(want_indices.shape)}, "
            f"got {indices.dtype} of shape {tuple(indices.shape)}"
        )
    n = docs.shape[0]
    if ((indices < 0) | (indices >= n)).any():
        raise CheckFailure(f"{name} indices: out of range 0..{n - 1}: {indices.tolist()}")
    exact = cosine_scores(queries.double(), docs.double())
    got_exact, want_exact = exact.gather(1, indices), exact.gather(1, want_indices)
    rtol, atol = tolerance_for(queries.dtype)
    near = (got_exact - want_exact).abs() <= atol + rtol * want_exact.abs()
    excused = near & (got_exact != want_exact) if strict_ties else near
    bad = (indices != want_indices) & ~excused
    if bad.any():
        row, col = (int(i) for i in bad.nonzero()[0])
        raise CheckFailure(
            f"{_diagnose(suspects_indices, lambda v: torch.equal(as_plain_tensor(v), indices))}"
            f"{name} indices: query {row}, position {col}: expected document {int(want_indices[row, col])}, "
            f"got {int(indices[row, col])} (scores {float(want_exact[row, col]):.8g} and "
            f"{float(got_exact[row, col]):.8g}). Query {row}: expected {want_indices[row].tolist()}, "
            f"got {indices[row].tolist()}",
            hint="documents with equal scores go smaller index first: torch.sort(scores, descending=True, "
            "stable=True); torch.topk mixes ties",
        )


def check_metric(value, expected: float, *, name: str, suspects=None, hint: str | None = None) -> None:
    """A metric's value is a number equal to ``expected`` (float64 precision)."""
    try:
        got = float(value)
    except (TypeError, ValueError):
        raise CheckFailure(f"{name}: expected a float, got {type(value).__name__}") from None
    if math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12):
        return
    raise CheckFailure(
        f"{_diagnose(suspects, lambda v: math.isclose(float(v), got, rel_tol=1e-9, abs_tol=1e-12))}"
        f"{name}: expected {expected!r}, got {got!r}",
        hint=hint,
    )


# --- the prompt's layout (the same as the stub's, which learners keep) -----------

RAG_INSTRUCTIONS = (
    "Answer the question using only the numbered passages below, and cite the passages you use "
    "like [1]. If they do not hold the answer, say that you do not know."
)


def format_rag_prompt(question: str, passages: list[str]) -> str:
    numbered = "".join(f"[{i}] {passage}\n" for i, passage in enumerate(passages, start=1))
    return f"{RAG_INSTRUCTIONS}\n\n{numbered}\nQuestion: {question}\nAnswer:"


def check_rag_prompt(got, question: str, passages: list[str], max_chars: int, *, suspects=None) -> None:
    """``got = (prompt, used)`` follows the stated rules: the prompt is the layout of the
    passages ``used`` names (cleaned), within max_chars, the used ones are exactly the
    leading run of distinct non-empty passages that fits."""

    def fail(problem: str):
        raise CheckFailure(
            f"{_diagnose(suspects, lambda v: v[0] == prompt and list(v[1]) == used)}"
            f"build_rag_prompt(question of {len(question)} characters, {len(passages)} passages, "
            f"max_chars={max_chars}): {problem}",
            hint="clean each passage (' '.join(p.split())), skip empty and repeated ones, and add "
            "passages in order while len(format_rag_prompt(question, kept)) <= max_chars; stop at the "
            "first one that does not fit",
        )

    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailure(f"build_rag_prompt: expected a pair (prompt, used), got {type(got).__name__}")
    prompt, used = got[0], list(got[1])
    cleaned = [" ".join(p.split()) for p in passages]
    if any(not isinstance(i, int) or not 0 <= i < len(passages) for i in used):
        fail(f"used holds indices outside 0..{len(passages) - 1}: {used}")
    kept = [cleaned[i] for i in used]
    layout = format_rag_prompt(question, kept)
    if prompt != layout:
        fail(
            f"the prompt is not format_rag_prompt(question, the cleaned passages {used}):\n"
            f"  got      {prompt[:300]!r}\n  expected {layout[:300]!r}"
        )
    if len(prompt) > max_chars:
        fail(f"the prompt has {len(prompt)} characters, over max_chars={max_chars}")
    expected_used: list[int] = []
    expected_kept: list[str] = []
    for i, text in enumerate(cleaned):  # which passages the rules admit, checked one by one
        if not text or text in expected_kept:
            continue
        if i not in used:
            break
        expected_used.append(i)
        expected_kept.append(text)
    if used != expected_used:
        fail(
            f"used {used}: each kept passage must be the next non-empty, not repeated one in order "
            f"(expected the run {expected_used} at the start)"
        )
    rest = [
        i for i, text in enumerate(cleaned) if text and text not in kept and i > (used[-1] if used else -1)
    ]
    if rest and len(format_rag_prompt(question, [*kept, cleaned[rest[0]]])) <= max_chars:
        fail(
            f"passage {rest[0]} still fits ({len(format_rag_prompt(question, [*kept, cleaned[rest[0]]]))} "
            f"characters with it) but was left out"
        )


# --- misconceptions: what each known mistake returns, from libraries and formulas ----


def _okapi_with_idf(idf_of):
    """rank_bm25's BM25Okapi with its idf table replaced by ``idf_of(N, n)``."""

    def variant(corpus, query, k1=1.5, b=0.75, epsilon=0.25):
        model = rank_bm25.BM25Okapi(corpus, k1=k1, b=b, epsilon=epsilon)
        doc_counts: dict[str, int] = {}
        for frequencies in model.doc_freqs:
            for word in frequencies:
                doc_counts[word] = doc_counts.get(word, 0) + 1
        model.idf = {word: idf_of(model.corpus_size, n) for word, n in doc_counts.items()}
        return torch.from_numpy(_okapi_scores(model, query))

    return variant


def _spans_stepping(step_of, stop_at_end: bool):
    """Spans starting every ``step_of(size, overlap)`` characters; with ``stop_at_end``
    False, every start below len(text) gets a span (the tail inside its neighbour)."""

    def variant(text, size, overlap):
        n = len(text)
        starts = np.arange(0, n, step_of(size, overlap))
        if stop_at_end and len(starts):
            reaching = np.nonzero(starts + size >= n)[0]
            starts = starts[: reaching[0] + 1] if len(reaching) else starts
        return [(int(s), int(min(s + size, n))) for s in starts]

    return variant


def _top_k_of(score_fn, chooser):
    def variant(queries, docs, k):
        scores = score_fn(queries, docs)
        return chooser(scores, min(k, docs.shape[0]))

    return variant


def _dot(queries, docs):
    return queries @ docs.T


def _normalised_dot(queries, docs):
    return F.normalize(queries, dim=-1, eps=1e-8) @ F.normalize(docs, dim=-1, eps=1e-8).T


def _stable(scores, k):
    values, order = torch.sort(scores, dim=-1, descending=True, stable=True)
    return values[:, :k], order[:, :k]


def _topk(scores, k):
    values, order = torch.topk(scores, k, dim=-1)
    return values, order


def _per_query(score_one):
    """A metric that averages ``score_one(ranking, relevant ids, grades, k)`` over queries."""

    def metric(ranked, relevant, k=None):
        values = []
        for ranking, judged in zip(ranked, relevant, strict=True):
            grades = dict(judged) if isinstance(judged, dict) else dict.fromkeys(judged, 1)
            wanted = {doc for doc, grade in grades.items() if grade > 0}
            values.append(score_one(list(ranking)[:k], wanted, grades))
        return float(np.mean(values))

    return metric


def _hit(top, wanted, grades):
    return float(bool(wanted.intersection(top)))


def _last_reciprocal_rank(top, wanted, grades):
    ranks = [r for r, doc in enumerate(top, start=1) if doc in wanted]
    return 1.0 / ranks[-1] if ranks else 0.0


def _ndcg_ideal_of_retrieved(top, wanted, grades):
    gains = np.array([grades.get(doc, 0) for doc in top], dtype=np.float64)
    discounts = 1.0 / np.log2(np.arange(2, len(top) + 2))
    ideal = float(np.sort(gains)[::-1] @ discounts) if len(top) else 0.0
    return float(gains @ discounts) / ideal if ideal > 0 else 0.0


def _budget_on_passages_only(question, passages, max_chars):
    kept, used, total = [], [], 0
    for i, passage in enumerate(passages):
        text = " ".join(passage.split())
        if not text or text in kept:
            continue
        if total + len(text) > max_chars:
            break
        kept.append(text)
        used.append(i)
        total += len(text)
    return format_rag_prompt(question, kept), used


MISCONCEPTIONS = Misconceptions(
    "exercises/section3/README.md",
    Misconception(
        "overlap_off_by_one",
        "neighbouring chunks share overlap - 1 characters",
        "each span starts size - overlap after the previous one, so neighbours share exactly `overlap` "
        "characters (and with overlap = 0 they touch, with no gap)",
        readme="3.3 — Chunk boundaries",
        variants={"chunk": _spans_stepping(lambda size, overlap: size - overlap + 1, stop_at_end=True)},
    ),
    Misconception(
        "tail_inside_previous",
        "an extra last chunk inside the one before",
        "stop after the first span that reaches len(text): range(0, len(text), step) adds tail spans that "
        "the previous span already holds (duplicate passages in the index)",
        readme="3.3 — Chunk boundaries",
        variants={"chunk": _spans_stepping(lambda size, overlap: size - overlap, stop_at_end=False)},
    ),
    Misconception(
        "idf_no_floor",
        "negative idf kept",
        "ln(N - n + 0.5) - ln(n + 0.5) is negative for a word in more than half of the documents: "
        "BM25Okapi replaces it by epsilon * the mean idf (taken before flooring)",
        readme="3.3 — The BM25 idf",
        variants={"bm25": _okapi_with_idf(lambda n_docs, n: math.log(n_docs - n + 0.5) - math.log(n + 0.5))},
    ),
    Misconception(
        "idf_plus_one",
        "Lucene's idf, ln(1 + (N - n + 0.5) / (n + 0.5))",
        "BM25Okapi (rank_bm25) has no 1 + inside the log: idf = ln(N - n + 0.5) - ln(n + 0.5), floored "
        "at epsilon * mean idf where negative",
        readme="3.3 — The BM25 idf",
        variants={"bm25": _okapi_with_idf(lambda n_docs, n: math.log(1 + (n_docs - n + 0.5) / (n + 0.5)))},
    ),
    Misconception(
        "pooling_includes_padding",
        "padding included in the mean",
        "average the real tokens only: sum(emb * mask) / mask.sum(), not emb.mean(dim=1)",
        readme="3.3 — Pooling and padding",
        variants={"mean_pool": lambda emb, mask: emb.mean(dim=1)},
    ),
    Misconception(
        "dot_not_cosine",
        "a dot product without normalising",
        "cosine divides by both norms: normalise queries and documents to unit length first, or long "
        "vectors win",
        readme="3.3 — Cosine, not dot product",
        variants={
            "cosine_top_k.scores": lambda q, d, k: _top_k_of(_dot, _stable)(q, d, k)[0],
            "cosine_top_k.indices": lambda q, d, k: _top_k_of(_dot, _stable)(q, d, k)[1],
        },
    ),
    Misconception(
        "topk_ties_unordered",
        "ties left in torch.topk's order",
        "equal scores go smaller document index first: torch.sort(scores, descending=True, stable=True); "
        "torch.topk promises no order among ties",
        readme="3.3 — Ties",
        variants={"cosine_top_k.indices": lambda q, d, k: _top_k_of(_normalised_dot, _topk)(q, d, k)[1]},
    ),
    Misconception(
        "recall_hit_rate",
        "recall@k computed as a hit rate",
        "recall@k is the FRACTION of the relevant documents found in the top k, not 1 if any is there",
        readme="3.3 — Recall, hit rate and MRR",
        variants={"recall_at_k": _per_query(_hit)},
    ),
    Misconception(
        "mrr_last_relevant",
        "MRR from the last relevant document",
        "the reciprocal rank is 1 / the rank of the FIRST relevant document: stop at the first hit",
        readme="3.3 — Recall, hit rate and MRR",
        variants={"mrr": _per_query(_last_reciprocal_rank)},
    ),
    Misconception(
        "ndcg_ideal_from_retrieved",
        "nDCG's ideal ranking built from the retrieved documents only",
        "IDCG sorts the grades of ALL the judged documents of the query, retrieved or not; sorting the "
        "retrieved ones scores a ranking that misses the best documents as perfect",
        readme="3.3 — The ideal ranking of nDCG",
        variants={"ndcg_at_k": _per_query(_ndcg_ideal_of_retrieved)},
    ),
    Misconception(
        "budget_counts_passages_only",
        "max_chars counted on the passages only",
        "the budget is for the WHOLE prompt, instructions, numbers and question included: "
        "len(format_rag_prompt(question, kept)) <= max_chars",
        readme="3.3 — The prompt budget",
        variants={"build_rag_prompt": _budget_on_passages_only},
    ),
    Misconception(
        "loop_over_documents",
        "scores() loops over every document",
        "precompute per word the documents that hold it and their contributions in __init__; scores() "
        "then touches only the query words' postings",
        readme="3.3 — BM25 speed",
        kind="speed",
    ),
)


def check_one_call(impl, draw) -> None:
    """One small BM25 of the learner's, checked against rank_bm25: the generated ban test
    (``test_no_library_shortcuts``) makes it after its static scan, with the banned
    classes trapped, so code that does nothing earns nothing there."""
    corpus = make_corpus(12, n_topics=2, n_queries=1, seed=int(draw.integers(0, 1000)))
    query = corpus.queries[0]
    model = impl.BM25(corpus.docs)
    check_bm25(model.scores(query), corpus.docs, query, 1.5, 0.75, 0.25, name="BM25 scores")


# --- the figure -------------------------------------------------------------------


def _precision_recall(ranking, relevant: set, levels: np.ndarray) -> np.ndarray:
    """Interpolated precision at each recall level (the best precision at any cutoff whose
    recall is at least that level)."""
    hits = np.array([doc in relevant for doc in ranking], dtype=np.float64)
    found = np.cumsum(hits)
    precision = found / np.arange(1, len(hits) + 1)
    recall = found / max(len(relevant), 1)
    best_after = np.maximum.accumulate(precision[::-1])[::-1]
    return np.array(
        [best_after[recall >= level].max() if (recall >= level).any() else 0.0 for level in levels]
    )


def _fused(rankings: list, n_docs: int, c: int = 60) -> list[int]:
    """Reciprocal rank fusion of several rankings: sum of 1 / (c + rank)."""
    fused = np.zeros(n_docs)
    for ranking in rankings:
        fused[np.asarray(ranking)] += 1.0 / (c + np.arange(1, len(ranking) + 1))
    return np.argsort(-fused, kind="stable").tolist()


def figure(impl) -> Figure:
    """Precision-recall of the learner's BM25 and of dense retrieval with the learner's
    mean_pool and cosine_top_k on the kit's corpus, and recall@k by the learner's metric."""
    corpus = make_corpus(240, seed=3)
    n_docs = len(corpus.docs)
    bm25 = impl.BM25(corpus.docs)
    lexical = [np.argsort(-np.asarray(bm25.scores(q)), kind="stable").tolist() for q in corpus.queries]
    vectors = word_vectors(corpus, seed=3)
    doc_vectors = impl.mean_pool(*embed(corpus.docs, vectors))
    query_vectors = impl.mean_pool(*embed(corpus.queries, vectors))
    _, dense_order = impl.cosine_top_k(query_vectors, doc_vectors, n_docs)
    dense = torch.as_tensor(dense_order).tolist()
    hybrid = [_fused([a, b], n_docs) for a, b in zip(lexical, dense)]

    levels = np.linspace(0.0, 1.0, 21)
    ks = np.arange(1, 81)
    fig, (left, right) = new_figure(10.5, 4.0, ncols=2)
    for label, rankings, style in [
        ("BM25", lexical, "-"),
        ("dense (mean pool + cosine)", dense, "--"),
        ("hybrid (reciprocal rank fusion)", hybrid, ":"),
    ]:
        curve = np.mean(
            [_precision_recall(r, set(q), levels) for r, q in zip(rankings, corpus.qrels)], axis=0
        )
        ndcg = impl.ndcg_at_k(rankings, corpus.qrels, 10)
        reciprocal = impl.mrr(rankings, corpus.qrels, 10)
        left.plot(levels, curve, style, label=f"{label}: nDCG@10 {ndcg:.2f}, MRR@10 {reciprocal:.2f}")
        right.plot(ks, [impl.recall_at_k(rankings, corpus.qrels, int(k)) for k in ks], style, label=label)
    left.set_xlabel("recall")
    left.set_ylabel("interpolated precision (mean over queries)")
    left.set_title(f"{len(corpus.queries)} queries, {n_docs} documents", fontsize=10)
    left.set_ylim(0, 1.05)
    left.legend(fontsize=7, loc="lower left")
    right.set_xlabel("k")
    right.set_ylabel("recall@k (your recall_at_k)")
    right.set_title("how many passages a prompt needs", fontsize=10)
    right.set_ylim(0, 1.05)
    right.legend(fontsize=7, loc="lower right")
    return png(fig), (
        "Precision-recall and recall@k on the kit's corpus: your BM25, dense retrieval with your mean_pool "
        "and cosine_top_k, and the two fused"
    )


def check_cosine_top_k(impl, case) -> None:
    """The learner's ``cosine_top_k`` on a ``top_k_case``, checked by :func:`check_top_k`."""
    queries, docs, k = top_k_inputs(case)
    check_top_k(
        impl.cosine_top_k(queries, docs, k),
        queries,
        docs,
        k,
        name=f"cosine_top_k(queries {tuple(queries.shape)}, docs {tuple(docs.shape)} {docs.dtype}, k={k})",
        suspects_scores=MISCONCEPTIONS.on("cosine_top_k.scores", queries, docs, k),
        suspects_indices=MISCONCEPTIONS.on("cosine_top_k.indices", queries, docs, k),
    )
