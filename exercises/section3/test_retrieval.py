"""Public tests for exercise 3.3 (retrieval for RAG). Run: pytest exercises/section3/test_retrieval.py

Chunks, the prompt and the ranking metrics are held to the rules of the docstrings
(and to small cases worked out by hand); BM25 is compared with rank_bm25's
BM25Okapi, mean pooling with torch's embedding_bag and cosine top-k with torch's
cosine_similarity and a stable sort. When a check fails it says which known mistake
your output looks like. The hidden graders draw many more cases, check the metrics
against torchmetrics and scikit-learn, and time BM25 against bm25s and rank_bm25.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import assert_close, load_support

pytestmark = pytest.mark.exercise("3.3")
support = load_support("3.3")
mistakes = support.MISCONCEPTIONS

# --- chunk ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, size, overlap, expected",
    [
        ("abcdefghij", 4, 1, [(0, 4), (3, 7), (6, 10)]),
        ("abcdefghijk", 4, 1, [(0, 4), (3, 7), (6, 10), (9, 11)]),
        ("abc", 4, 1, [(0, 3)]),
        ("abcdefgh", 4, 0, [(0, 4), (4, 8)]),
        ("", 3, 2, []),
    ],
)
def test_chunk_examples(impl, text, size, overlap, expected):
    got = impl.chunk(text, size, overlap)
    support.check_chunks(got, text, size, overlap, suspects=mistakes.on("chunk", text, size, overlap))
    assert [tuple(span) for span in got] == expected


@settings(max_examples=15)
@given(case=support.chunk_case())
def test_chunk_follows_the_rules(impl, case):
    text, size, overlap = case
    support.check_chunks(
        impl.chunk(text, size, overlap),
        text,
        size,
        overlap,
        suspects=mistakes.on("chunk", text, size, overlap),
    )


@pytest.mark.parametrize("size, overlap", [(0, 0), (4, 4), (4, -1)])
def test_chunk_rejects_bad_sizes(impl, size, overlap):
    with pytest.raises(ValueError):
        impl.chunk("some text", size, overlap)


# --- BM25 -------------------------------------------------------------------------


def test_bm25_floors_the_negative_idf(impl):
    # "the" is in 3 documents of 4: ln(4 - 3 + 0.5) - ln(3 + 0.5) < 0, so it gets the floor.
    corpus = [["the", "cat", "sat"], ["the", "dog"], ["the", "mat", "the"], ["a", "cat"]]
    query = ["the", "cat", "cat", "unicorn"]
    support.check_bm25(
        impl.BM25(corpus).scores(query),
        corpus,
        query,
        1.5,
        0.75,
        0.25,
        name=f"BM25({corpus}).scores({query})",
        suspects=mistakes.on("bm25", corpus, query),
    )


@settings(max_examples=15)
@given(case=support.bm25_case())
def test_bm25_matches_rank_bm25(impl, case):
    corpus, query, k1, b, epsilon = case
    support.check_bm25(
        impl.BM25(corpus, k1=k1, b=b, epsilon=epsilon).scores(query),
        corpus,
        query,
        k1,
        b,
        epsilon,
        name=f"BM25({corpus}, k1={k1}, b={b}, epsilon={epsilon}).scores({query})",
        suspects=mistakes.on("bm25", corpus, query, k1, b, epsilon),
    )


@pytest.mark.parametrize("corpus", [[], [[], []]])
def test_bm25_rejects_a_corpus_without_tokens(impl, corpus):
    with pytest.raises(ValueError):
        impl.BM25(corpus)


# --- dense retrieval --------------------------------------------------------------


@settings(max_examples=12)
@given(case=support.pool_case())
def test_mean_pool_matches_embedding_bag(impl, case):
    emb, mask = support.pool_inputs(case)
    assert_close(
        impl.mean_pool(emb, mask),
        support.mean_pool_oracle(emb, mask),
        name=f"mean_pool(token_embeddings {tuple(emb.shape)} {emb.dtype}, attention_mask {mask.dtype} "
        f"= {mask.long().tolist()})",
        hint="sum the real tokens' vectors and divide by their count; a row without real tokens is zeros",
        suspects=mistakes.on("mean_pool", emb, mask),
    )


@settings(max_examples=12)
@given(case=support.top_k_case())
def test_cosine_top_k_matches_torch(impl, case):
    support.check_cosine_top_k(impl, case)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cosine_top_k_breaks_ties_by_index(impl, dtype):
    # Tied rows have one non-zero coordinate, 1: each of their scores is one exact product,
    # so copies score exactly the same however the matrix product adds up.
    one = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    docs = torch.tensor(one * 6 + [[0.0, 0.0, 0.0], [3.0, 3.0, 0.0]] + one * 6, dtype=dtype)
    queries = torch.tensor([[1.0, 1.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)
    for k in (5, 26):
        support.check_top_k(
            impl.cosine_top_k(queries, docs, k),
            queries,
            docs,
            k,
            name=f"cosine_top_k with tied documents, k={k}",
            strict_ties=True,
            suspects_scores=mistakes.on("cosine_top_k.scores", queries, docs, k),
            suspects_indices=mistakes.on("cosine_top_k.indices", queries, docs, k),
        )


# --- ranking metrics --------------------------------------------------------------
# Four queries worked out by hand: the relevant ids of query 0 are 1, 5, 9 and 2 (grades
# 1, 2, 1, 3), of query 1 the ids 8 and 7 (grade 1), of query 2 the id 0, and query 3 has
# nothing relevant (id 6 is judged, with grade 0).
RANKED = [[3, 1, 4, 5, 9], [2, 7, 1, 8], [5, 3], [6, 0, 2]]
RELEVANT = [{1: 1, 5: 2, 9: 1, 2: 3}, [8, 7], {0: 1}, {6: 0}]
LOG3 = math.log2(3)
EXPECTED = [
    # recall@3: 1 of 4, 1 of 2, 0 of 1, and 0 for the query without relevant ids
    ("recall_at_k", (3,), (1 / 4 + 1 / 2 + 0 + 0) / 4),
    ("recall_at_k", (10,), (3 / 4 + 2 / 2 + 0 + 0) / 4),
    # the first relevant ids are at ranks 2 and 2
    ("mrr", (None,), (1 / 2 + 1 / 2) / 4),
    ("mrr", (4,), (1 / 2 + 1 / 2) / 4),
    ("mrr", (1,), 0.0),
    # query 0: DCG@3 = 1 / log2(3) (id 1 at rank 2); IDCG@3 = 3 + 2 / log2(3) + 1 / log2(4)
    # from the grades 3, 2, 1 of ids 2, 5 and 1 or 9, although id 2 was not retrieved.
    # query 1: DCG@3 = 1 / log2(3), IDCG@3 = 1 + 1 / log2(3).
    ("ndcg_at_k", (3,), ((1 / LOG3) / (3 + 2 / LOG3 + 1 / 2) + (1 / LOG3) / (1 + 1 / LOG3)) / 4),
]


@pytest.mark.parametrize("metric, args, expected", EXPECTED)
def test_metrics_on_a_worked_example(impl, metric, args, expected):
    support.check_metric(
        getattr(impl, metric)(RANKED, RELEVANT, *args),
        expected,
        name=f"{metric}(RANKED, RELEVANT, {', '.join(map(str, args))})",
        suspects=mistakes.on(metric, RANKED, RELEVANT, *args),
        hint="see the worked example's comments in this test file",
    )


@settings(max_examples=10)
@given(case=support.ranking_case())
def test_metrics_properties(impl, case):
    ranked, relevance, k = case
    recall = [impl.recall_at_k(ranked, relevance, j) for j in range(1, k + 1)]
    assert all(0.0 <= r <= 1.0 for r in recall), f"recall@k outside [0, 1]: {recall}"
    assert recall == sorted(recall), f"recall@k must not fall as k grows: {recall}"
    assert 0.0 <= impl.mrr(ranked, relevance, k) <= impl.mrr(ranked, relevance) <= 1.0
    assert 0.0 <= impl.ndcg_at_k(ranked, relevance, k) <= 1.0 + 1e-12
    ideal = [sorted((d for d in judged if judged[d] > 0), key=lambda d: -judged[d]) for judged in relevance]
    with_relevant = sum(any(g > 0 for g in judged.values()) for judged in relevance) / len(relevance)
    for metric, args in [("ndcg_at_k", (k,)), ("recall_at_k", (10**6,)), ("mrr", ())]:
        support.check_metric(
            getattr(impl, metric)(ideal, relevance, *args),
            with_relevant,
            name=f"{metric}(ideal rankings {ideal}, relevance {relevance}, {', '.join(map(str, args))})",
            hint="the ideal ranking scores 1 on every query with something relevant, and 0 on the others",
            suspects=mistakes.on(metric, ideal, relevance, *args),
        )


def test_metrics_reject_mismatched_queries(impl):
    for metric in (impl.recall_at_k, impl.ndcg_at_k):
        with pytest.raises(ValueError):
            metric([[1, 2]], [[1], [2]], 3)
    with pytest.raises(ValueError):
        impl.mrr([], [])


# --- the prompt -------------------------------------------------------------------


def test_rag_prompt_keeps_the_ranking_and_the_whole_budget(impl):
    question = "Who wrote the letter?"
    passages = [
        "  The letter was\nwritten  by Ada. ",
        "",
        "Ada wrote it in 1843.",
        "The letter was written by Ada.",
        "A long passage about something else entirely, " * 3,
        "Short.",
    ]
    kept = ["The letter was written by Ada.", "Ada wrote it in 1843."]
    max_chars = len(support.format_rag_prompt(question, kept)) + 10
    got = impl.build_rag_prompt(question, passages, max_chars)
    support.check_rag_prompt(
        got,
        question,
        passages,
        max_chars,
        suspects=mistakes.on("build_rag_prompt", question, passages, max_chars),
    )
    assert got[0] == support.format_rag_prompt(question, kept) and list(got[1]) == [0, 2]


@settings(max_examples=12)
@given(
    question=st.text(max_size=20),
    passages=st.lists(st.text(alphabet="ab \n", max_size=14), max_size=7),
    room=st.integers(0, 60),
)
def test_rag_prompt_follows_the_rules(impl, question, passages, room):
    max_chars = len(support.format_rag_prompt(question, [])) + room
    support.check_rag_prompt(
        impl.build_rag_prompt(question, passages, max_chars),
        question,
        passages,
        max_chars,
        suspects=mistakes.on("build_rag_prompt", question, passages, max_chars),
    )


def test_rag_prompt_too_small_a_budget(impl):
    with pytest.raises(ValueError):
        impl.build_rag_prompt("Why?", ["Because."], len(support.format_rag_prompt("Why?", [])) - 1)
