"""Hidden graders for exercise 3.3 (retrieval for RAG): 20 points.

Oracles: rank_bm25's BM25Okapi; torch's embedding_bag (mean pooling) and
cosine_similarity with a stable sort; torchmetrics' retrieval metrics, held against
closed forms in float64 (graders/section3/retrieval_oracle.py, with the chunk and
prompt oracles); bm25s and rank_bm25 as the speed baselines. Never the reference
solution. The run's seed is printed and replayable with --seed.
"""

import math

import bm25s
import numpy as np
import pytest
import rank_bm25
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    Draw,
    assert_close,
    assert_speed,
    check_equal,
    load_oracle,
    load_support,
    unchanged,
)

pytestmark = pytest.mark.exercise("3.3")
support, oracle = load_support("3.3"), load_oracle("3.3")
mistakes = support.MISCONCEPTIONS


def as_spans(value) -> list[tuple[int, int]]:
    return [tuple(span) for span in value]


# --- chunk (3 points) -------------------------------------------------------------


@pytest.mark.points(1)
def test_chunk_edges(impl, draw):
    long_text = "".join(draw.rng.choice(list("ab c\n"), size=10_000))
    cases = [
        ("x", 1, 0),
        ("abcdef", 1, 0),  # one character each
        ("abcdef", 3, 2),  # a step of 1
        ("abcdef", 6, 5),  # the text is exactly one span
        ("abcdef", 10, 9),  # shorter than one span
        ("abcdefg", 3, 0),  # no overlap: the spans touch
        ("a\nb 漢🙂 c", 2, 1),  # a character is a character, whatever its bytes
        (long_text, 1000, 200),
    ]
    for text, size, overlap in cases:
        check_equal(
            as_spans(impl.chunk(text, size, overlap)),
            oracle.chunk_spans(text, size, overlap),
            name=f"chunk(text of {len(text)} characters, size={size}, overlap={overlap})",
            suspects=mistakes.on("chunk", text, size, overlap),
        )
    for size, overlap in [(0, 0), (3, 3), (3, 5), (3, -1)]:
        with pytest.raises(ValueError):
            impl.chunk("abcdef", size, overlap)


@pytest.mark.points(2)
@settings(max_examples=60)
@given(case=support.chunk_case(max_len=300, max_size=40))
def test_chunk_matches_the_oracle(impl, case):
    text, size, overlap = case
    check_equal(
        as_spans(impl.chunk(text, size, overlap)),
        oracle.chunk_spans(text, size, overlap),
        name=f"chunk(text of {len(text)} characters, size={size}, overlap={overlap})",
        hint="start at 0, step size - overlap, each span min(start + size, len(text)) long, and stop after "
        "the first span that ends at len(text)",
        suspects=mistakes.on("chunk", text, size, overlap),
    )


# --- the prompt (2 points) --------------------------------------------------------


@pytest.mark.points(2)
@settings(max_examples=60)
@given(
    question=st.text(alphabet="Who? ab\n", max_size=24),
    passages=st.lists(
        st.sampled_from(["", " \n", "a b", "a  b\n", "cc", "dd dd", "e " * 30])
        | st.text(alphabet="ab \t\n", max_size=20),
        max_size=10,
    ),
    room=st.integers(-3, 140),
)
def test_rag_prompt_matches_the_oracle(impl, question, passages, room):
    max_chars = len(support.format_rag_prompt(question, [])) + room
    name = f"build_rag_prompt({question!r}, {passages!r}, max_chars={max_chars})"
    if room < 0:
        with pytest.raises(ValueError):
            impl.build_rag_prompt(question, passages, max_chars)
        return
    got = impl.build_rag_prompt(question, passages, max_chars)
    want = oracle.rag_prompt(question, passages, max_chars)
    check_equal(
        (got[0], list(got[1])) if isinstance(got, (tuple, list)) and len(got) == 2 else got,
        want,
        name=name,
        hint="clean each passage, skip empty and repeated ones, add them in order while the WHOLE prompt "
        "fits (<= max_chars), and stop at the first one that does not",
        suspects=mistakes.on("build_rag_prompt", question, passages, max_chars),
    )
    # The boundary is inclusive: the same passages with exactly their length as the budget.
    exact = len(want[0])
    check_equal(
        impl.build_rag_prompt(question, passages, exact)[0],
        oracle.rag_prompt(question, passages, exact)[0],
        name=f"build_rag_prompt with max_chars = {exact}, the length of the prompt it should build",
        hint="a prompt of exactly max_chars characters fits",
    )


# --- ranking metrics (4 points) ---------------------------------------------------


def _mixed_forms(relevance, as_lists):
    """Some queries' labels as a plain list of the relevant ids (grade 1 each)."""
    return [
        [doc for doc, grade in judged.items() if grade > 0] if flag else judged
        for judged, flag in zip(relevance, as_lists)
    ]


def _check_against_oracles(impl, metric, ranked, relevant, *args):
    want = getattr(oracle, metric)(ranked, relevant, *args)
    library = getattr(oracle, f"{metric}_torchmetrics")(ranked, relevant, *args)
    assert math.isclose(want, library, rel_tol=1e-6, abs_tol=1e-7), (
        f"grader oracles disagree on {metric}: closed form {want}, torchmetrics {library}"
    )
    support.check_metric(
        getattr(impl, metric)(ranked, relevant, *args),
        want,
        name=f"{metric}(ranked={ranked}, relevant={relevant}, {', '.join(map(repr, args))})",
        suspects=mistakes.on(metric, ranked, relevant, *args),
    )


@pytest.mark.points(2)
@settings(max_examples=50)
@given(case=support.ranking_case(max_queries=6, max_docs=14), data=st.data())
def test_recall_and_mrr_match_torchmetrics(impl, case, data):
    ranked, relevance, k = case
    relevant = _mixed_forms(
        relevance, data.draw(st.lists(st.booleans(), min_size=len(ranked), max_size=len(ranked)))
    )
    _check_against_oracles(impl, "recall_at_k", ranked, relevant, k)
    _check_against_oracles(impl, "mrr", ranked, relevant, k)
    _check_against_oracles(impl, "mrr", ranked, relevant)
    for metric, args in [
        ("recall_at_k", ([[1]], [[1], [2]], 1)),
        ("mrr", ([], [])),
        ("recall_at_k", ([[1]], [[1]], 0)),
    ]:
        with pytest.raises(ValueError):
            getattr(impl, metric)(*args)


@pytest.mark.points(1)
@settings(max_examples=50)
@given(case=support.ranking_case(max_queries=6, max_docs=14), data=st.data())
def test_ndcg_matches_torchmetrics(impl, case, data):
    ranked, relevance, k = case
    relevance = _mixed_forms(
        relevance, data.draw(st.lists(st.booleans(), min_size=len(ranked), max_size=len(ranked)))
    )
    _check_against_oracles(impl, "ndcg_at_k", ranked, relevance, k)


@pytest.mark.points(1)
def test_metrics_on_the_kit_corpus(impl, draw):
    # The kit's corpus ranked by rank_bm25: 300 documents, graded labels (1 and 2), rankings
    # of every document, and cut to 5 documents.
    corpus = support.make_corpus(300, n_queries=12, seed=int(draw.integers(0, 10**6)))
    rankings = [
        np.argsort(-support.bm25_okapi(corpus.docs, q), kind="stable").tolist() for q in corpus.queries
    ]
    for ranked in (rankings, [r[:5] for r in rankings]):
        for cutoff in (1, 10, 400):
            for metric in ("recall_at_k", "mrr", "ndcg_at_k"):
                _check_against_oracles(impl, metric, ranked, corpus.qrels, cutoff)
        _check_against_oracles(impl, "mrr", ranked, corpus.qrels)


# --- BM25 (3 points here, 2 for speed below) ---------------------------------------


def _check_bm25(impl, corpus, query, k1=1.5, b=0.75, epsilon=0.25, what="BM25"):
    support.check_bm25(
        impl.BM25(corpus, k1=k1, b=b, epsilon=epsilon).scores(query),
        corpus,
        query,
        k1,
        b,
        epsilon,
        name=f"{what}: BM25({str(corpus)[:120]}, k1={k1}, b={b}, epsilon={epsilon}).scores({query})",
        suspects=mistakes.on("bm25", corpus, query, k1, b, epsilon),
    )


@pytest.mark.points(1)
def test_bm25_edges_and_the_kit_corpus(impl, draw):
    # "x" is in exactly 2 of 4 documents: idf = ln(2.5) - ln(2.5) = 0, which is not floored.
    zero_idf = [["x", "a"], ["x"], ["b"], ["c", "a"]]
    _check_bm25(impl, zero_idf, ["x", "a"], what="an idf of exactly 0")
    # Every word in every document: every idf is negative, and so is the floor.
    _check_bm25(impl, [["a", "b"], ["b", "a", "a"], ["a", "b", "b"]], ["a", "b"], what="all idfs negative")
    common = [["the", "cat"], ["the", "dog", "the"], [], ["the", "mat", "cat"], ["a"]]
    for query in ([], ["unicorn"], ["cat", "cat", "the"], ["the"]):
        _check_bm25(impl, common, query, what="empty, unknown and repeated query words")
    _check_bm25(impl, common, ["cat", "mat"], k1=1.2, b=1.0, what="b = 1 with an empty document")
    _check_bm25(
        impl, common, ["cat", "mat"], k1=0.9, b=0.0, epsilon=0.5, what="b = 0: no length normalisation"
    )
    for corpus in ([], [[]], [[], [], []]):
        with pytest.raises(ValueError):
            impl.BM25(corpus)
    # The kit's corpus: 300 documents, one index, several queries.
    corpus = support.make_corpus(300, n_queries=12, seed=int(draw.integers(0, 10**6)))
    model = impl.BM25(corpus.docs)
    for query in corpus.queries:
        support.check_bm25(
            model.scores(query),
            corpus.docs,
            query,
            1.5,
            0.75,
            0.25,
            name=f"BM25 on the kit's corpus (300 documents), query {query}",
            suspects=mistakes.on("bm25", corpus.docs, query),
        )


@pytest.mark.points(2)
@settings(max_examples=60)
@given(case=support.bm25_case(max_docs=15, max_len=10))
def test_bm25_matches_rank_bm25(impl, case):
    corpus, query, k1, b, epsilon = case
    _check_bm25(impl, corpus, query, k1, b, epsilon, what="drawn corpus")


# --- dense retrieval (5 points) ---------------------------------------------------


@pytest.mark.points(2)
@settings(max_examples=40)
@given(case=support.pool_case(), scattered=st.booleans())
def test_mean_pool_matches_embedding_bag(impl, case, scattered):
    emb, mask = support.pool_inputs(case)
    if scattered:  # padding anywhere (left padding, masked-out tokens), not only at the end
        bools = Draw(case[-1] + 1).bool_mask(*mask.shape)
        mask = bools.to(mask.dtype)
    with unchanged(emb, mask, names=["token_embeddings", "attention_mask"]):
        got = impl.mean_pool(emb, mask)
    assert_close(
        got,
        support.mean_pool_oracle(emb, mask),
        name=f"mean_pool(token_embeddings {tuple(emb.shape)} {emb.dtype}, attention_mask {mask.dtype} "
        f"= {mask.long().tolist()})",
        hint="sum the real tokens' vectors, divide by their count; a row without real tokens is zeros",
        suspects=mistakes.on("mean_pool", emb, mask),
    )


@pytest.mark.points(2)
@settings(max_examples=40)
@given(case=support.top_k_case())
def test_cosine_top_k_matches_torch(impl, case):
    support.check_cosine_top_k(impl, case)


def dyadic_rows(rng: Draw, n: int, dim: int = 16) -> torch.Tensor:
    """Rows with 1, 4 or 16 entries of +-1 (norms 1, 2, 4) times a power of two: unit
    vectors and their products are exact in float32, so equal rows score exactly equally
    in any correct code."""
    rows = torch.zeros(n, dim, dtype=torch.float64)
    for i in range(n):
        where = rng.rng.choice(dim, size=int(rng.rng.choice([1, 4, 16])), replace=False)
        rows[i, where] = torch.as_tensor(rng.rng.choice([-1.0, 1.0], size=len(where)))
        rows[i] *= 2.0 ** int(rng.integers(-2, 3))
    return rows


@pytest.mark.points(1)
@settings(max_examples=15)
@given(seed=SEEDS, dtype=FLOAT_DTYPES, n=st.integers(2, 40), k=st.integers(0, 45))
def test_cosine_top_k_ties_go_to_the_smaller_index(impl, seed, dtype, n, k):
    rng = Draw(seed)
    distinct = dyadic_rows(rng, max(1, n // 4))
    docs = distinct[torch.as_tensor(rng.integers(0, len(distinct), size=n))].to(dtype)  # many copies
    queries = torch.cat([dyadic_rows(rng, 3), docs[:2]]).to(dtype)
    support.check_top_k(
        impl.cosine_top_k(queries, docs, k),
        queries,
        docs,
        k,
        name=f"cosine_top_k with {n} documents of which {n - len(distinct)} or more are copies, k={k}",
        strict_ties=True,
        suspects_scores=mistakes.on("cosine_top_k.scores", queries, docs, k),
        suspects_indices=mistakes.on("cosine_top_k.indices", queries, docs, k),
    )
    with pytest.raises(ValueError):
        impl.cosine_top_k(queries, docs, -1)


# --- rules and speed (2 points) ---------------------------------------------------
# The rules' point is test_no_library_shortcuts, which the plugin generates from the
# catalog's `banned` (llmkit.plugin.bans; its call is support.check_one_call).

# BM25 scores of 10,000 documents of the kit's corpus (15-40 tokens each) for queries of
# 10 content words (each in fewer than half of the documents, where bm25s' idf, its
# "robertson" idf clamped at 0, and rank_bm25's floored one agree: every timed answer is
# checked against the baseline's). bm25s is set up with rank_bm25's term-frequency part
# ("atire") and float64 scores. Measured here (2 shared, busy cores, medians):
# in-process, the reference 0.4-0.6x bm25s and 0.001-0.002x rank_bm25, the mutant that
# loops over the documents for every query word 140-230x bm25s and 1.0x rank_bm25
# (rank_bm25 does the same); sandboxed (each call's trip to the worker on both sides,
# the worker's request handling on the learner's side), the reference 1.4x bm25s on a
# quiet machine and 1.7-1.9x on a busy one, 0.03-0.05x rank_bm25; that mutant 1.7x
# rank_bm25 and 120x bm25s. The target is 2x bm25s: 3x leaves room for noisy machines.
SPEED_DOCS, QUERY_WORDS = 10_000, 10
LIMIT_BM25S = 3.0
LIMIT_RANK_BM25 = 0.5  # clearly faster than rank_bm25, not a coin toss at 1.0


@pytest.fixture(scope="module")
def speed_corpus():
    corpus = support.make_corpus(SPEED_DOCS, n_queries=0, seed=11)
    content = [word for words in corpus.topic_words for word in words]
    return corpus.docs, content


def _speed_queries(draw, content):
    return lambda i: ([content[j] for j in draw.rng.choice(len(content), size=QUERY_WORDS, replace=False)],)


@pytest.mark.points(1)
@pytest.mark.speed
def test_bm25_scores_faster_than_rank_bm25(impl, draw, speed_corpus, record_metric):
    docs, content = speed_corpus
    model, baseline = impl.BM25(docs), rank_bm25.BM25Okapi(docs)
    assert_speed(
        model.scores,
        baseline.get_scores,
        _speed_queries(draw, content),
        limit=LIMIT_RANK_BM25,
        what=f"BM25.scores over {SPEED_DOCS} documents (queries of {QUERY_WORDS} words)",
        baseline_name="rank_bm25's BM25Okapi.get_scores",
        hint="precompute in __init__, per word, the documents that hold it and their contributions; scores() "
        "then adds up the query words' entries, with no loop over the documents",
        record_metric=record_metric,
        repeats=5,
    )


@pytest.mark.points(1)
@pytest.mark.speed
def test_bm25_scores_within_3x_bm25s(impl, draw, speed_corpus, record_metric):
    docs, content = speed_corpus
    model = impl.BM25(docs)
    fast = bm25s.BM25(k1=1.5, b=0.75, method="atire", idf_method="robertson", dtype="float64")
    fast.index(docs, show_progress=False)
    assert_speed(
        model.scores,
        fast.get_scores,
        _speed_queries(draw, content),
        limit=LIMIT_BM25S,
        what=f"BM25.scores over {SPEED_DOCS} documents (queries of {QUERY_WORDS} words)",
        baseline_name="bm25s (precomputed sparse scores)",
        hint="keep, per word, a numpy array of document ids and one of their score contributions (computed "
        "once in __init__); scores() is then one np.zeros and an indexed += per query word",
        record_metric=record_metric,
        repeats=9,
    )
