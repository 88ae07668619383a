"""Hidden graders for exercise 0.1 (counting models): 15 points.

Oracles, never the reference solution: scikit-learn's CountVectorizer and
TfidfVectorizer (exercises/support/section0/counting.py) for the bag of words and
TF-IDF, and for the n-gram model the closed form below: token ids, numpy windows
and np.unique counts in float64 (no dicts of tuples, no Counter). The Markov-source
test compares the learner's perplexity with exp(entropy rate) of the chain that made
the text, and the speed test times count_ngrams against Counter(zip(...)) in the same
run. Corpora come from hypothesis and seeded generators; the run's seed is printed
and replayable with --seed.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmkit.testing import CheckFailure, assert_close, assert_speed, check_equal, load_support

pytestmark = pytest.mark.exercise("0.1")
support = load_support("0.1")
mistakes = support.MISCONCEPTIONS
BOS, EOS, UNK, UNSEEN = support.BOS, support.EOS, support.UNK, support.UNSEEN


# --- the n-gram model in closed form ------------------------------------------------


class ClosedForm:
    """Add-k n-gram probabilities from counts of id windows (float64)."""

    def __init__(self, train: list[list[str]], n: int, k: float):
        self.n, self.k = n, k
        self.vocab = sorted({w for s in train for w in s} | {EOS, UNK})
        self.V = len(self.vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        bos = self.V  # <s> gets an id outside the vocabulary
        windows = []
        for s in train:
            ids = np.array([bos] * (n - 1) + [self.index[w] for w in s] + [self.index[EOS]], dtype=np.int64)
            windows.append(np.lib.stride_tricks.sliding_window_view(ids, n))
        grams = np.concatenate(windows)
        uniq, counts = np.unique(grams, axis=0, return_counts=True)
        self.ngram_ids = {tuple(g): int(c) for g, c in zip(uniq.tolist(), counts.tolist())}
        self.context_ids: dict[tuple[int, ...], int] = {}
        for gram, c in self.ngram_ids.items():
            self.context_ids[gram[:-1]] = self.context_ids.get(gram[:-1], 0) + c
        self.names = self.vocab + [BOS]

    def counts(self) -> dict[tuple[str, ...], int]:
        return {tuple(self.names[i] for i in g): c for g, c in self.ngram_ids.items()}

    def _id(self, word: str) -> int:
        return self.index.get(word, self.index[UNK])

    def _context(self, context) -> tuple[int, ...]:
        if self.n == 1:
            return ()
        ids = [self.V] * (self.n - 1) + [self.V if w == BOS else self._id(w) for w in context]
        return tuple(ids[len(ids) - (self.n - 1) :])

    def prob(self, word: str, context) -> float:
        ctx = self._context(context)
        count = self.ngram_ids.get(ctx + (self._id(word),), 0)
        return (count + self.k) / (self.context_ids.get(ctx, 0) + self.k * self.V)

    def probs(self, queries) -> np.ndarray:
        return np.array([self.prob(w, c) for w, c in queries], dtype=np.float64)

    def perplexity(self, sentences) -> float:
        nll = -np.log(self.probs(support.predicted_tokens(sentences, self.n)))
        return float(np.exp(nll.mean()))


def fitted(impl, train, n, k):
    model = impl.NGramLM(n, k=k)
    model.fit(train)
    return model


def probs_of(model, queries) -> np.ndarray:
    return np.array([float(model.prob(w, list(c))) for w, c in queries], dtype=np.float64)


EDGE_DOCS = [
    [[], []],  # every document empty: vocab [], shape (2, 0)
    [["the"]],  # one document: every idf is 1
    [["the", "cat"], [], ["the", "the", "dog"]],  # an empty document: a zero row
    [["b", "a", "B", "ä", "a"], ["a"]],  # case and unicode sort as Python sorts them
    [["x", "y"], ["x", "y"], ["x", "y"]],  # words in every document
]

# --- bag of words and TF-IDF (5 points) -----------------------------------------------


@pytest.mark.points(2)
@settings(max_examples=30)
@given(docs=support.documents(max_docs=8, max_len=12))
@example(docs=EDGE_DOCS[0])
@example(docs=EDGE_DOCS[3])
@example(docs=EDGE_DOCS[2])
def test_bag_of_words_matches_sklearn(impl, docs):
    support.check_bag_of_words(impl.bag_of_words(docs), docs)


@pytest.mark.points(2)
@settings(max_examples=30)
@given(docs=support.documents(max_docs=8, max_len=12))
@example(docs=EDGE_DOCS[4])
@example(docs=EDGE_DOCS[2])
@example(docs=EDGE_DOCS[1])
@example(docs=EDGE_DOCS[0])
def test_tfidf_matches_sklearn(impl, docs):
    support.check_tfidf(impl.tfidf(docs), docs)


# --- counts, vocabulary and probabilities (5 points) ---------------------------------


@pytest.mark.points(1)
@settings(max_examples=25)
@given(case=support.corpora(max_n=5, max_sentences=8))
def test_count_ngrams_matches_closed_form(impl, case):
    train, n, _ = case
    got = impl.count_ngrams(train, n)
    if type(got) is not dict:
        raise CheckFailure(
            f"count_ngrams returned a {type(got).__name__}, not a dict", hint="return dict(counts)"
        )
    check_equal(
        got,
        ClosedForm(train, n, 1.0).counts(),
        name=f"count_ngrams({train!r}, n={n})",
        hint=f"pad with n - 1 = {n - 1} <s> and one </s>; count windows of n tokens as tuples",
        suspects=mistakes.on("count_ngrams", train, n),
    )


@pytest.mark.points(2)
@settings(max_examples=25)
@given(case=support.corpora(max_n=4, max_sentences=8), data=st.data())
def test_vocab_and_prob_match_closed_form(impl, case, data):
    train, n, k = case
    oracle = ClosedForm(train, n, k)
    model = fitted(impl, train, n, k)
    describe = support.describe_corpus(train, n, k)
    check_equal(
        list(model.vocab),
        oracle.vocab,
        name=f"{describe}: vocab",
        hint="sorted: the training words, </s> and <unk>, not <s>",
        suspects=mistakes.on("vocab", train),
    )
    queries = support.seen_queries(train, n) + data.draw(support.unseen_queries(train, n, count=20))
    assert_close(
        probs_of(model, queries),
        oracle.probs(queries),
        name=f"{describe}: prob(word, context) for {len(queries)} queries, seen and unseen contexts",
        hint="(count(ctx + w) + k) / (count(ctx) + k * V); unseen words are <unk>; the last n - 1 "
        "context words, left-padded with <s>",
        suspects=mistakes.on("probs", train, n, k, queries),
    )


@pytest.mark.points(1)
def test_order_one_refit_and_empty_sentences(impl):
    train = [["the", "cat"], [], ["the", "dog", "the"]]
    # n = 1: the context plays no part, however long (context[-0:] is the whole list)
    model = fitted(impl, train, 1, 0.5)
    oracle = ClosedForm(train, 1, 0.5)
    queries = [
        ("the", []),
        ("the", ["cat", "dog"]),
        ("</s>", ["the"] * 5),
        ("zebra", ["dog"]),
        ("cat", [BOS]),
    ]
    assert_close(probs_of(model, queries), oracle.probs(queries), name=f"NGramLM(1, k=0.5) on {train!r}")
    # fit() again starts from scratch: nothing of the first corpus remains
    other = [["a", "b", "a"]]
    model.fit(other)
    check_equal(list(model.vocab), ["</s>", "<unk>", "a", "b"], name="vocab after a second fit()")
    queries = [("a", []), ("the", []), ("</s>", [])]
    assert_close(
        probs_of(model, queries),
        ClosedForm(other, 1, 0.5).probs(queries),
        name=f"prob after fit({other!r}) on a model first fitted on {train!r}",
        hint="fit() replaces the counts and the vocabulary, it does not add to them",
    )
    # n = 3 with an empty sentence: "<s> <s> </s>" is a sentence too
    model = fitted(impl, train, 3, 1.0)
    queries = [("</s>", [BOS, BOS]), ("</s>", []), ("the", ["cat", "the"]), ("dog", ["zebra", "the"])]
    assert_close(
        probs_of(model, queries),
        ClosedForm(train, 3, 1.0).probs(queries),
        name=f"NGramLM(3) on {train!r}",
        suspects=mistakes.on("probs", train, 3, 1.0, queries),
    )


@pytest.mark.points(1)
@settings(max_examples=15)
@given(
    case=support.corpora(max_n=4, max_sentences=8), k=st.sampled_from([1.0, 0.3, 1e-3, 3.0]), data=st.data()
)
def test_prob_sums_to_one_over_the_vocabulary(impl, case, k, data):
    train, n, _ = case
    model = fitted(impl, train, n, k)
    vocab = ClosedForm(train, n, k).vocab
    contexts = sorted({tuple(c) for _, c in support.seen_queries(train, n)})
    contexts += [tuple(c) for _, c in data.draw(support.unseen_queries(train, n, count=4))]
    for context in contexts:
        total = float(sum(probs_of(model, [(w, list(context)) for w in vocab])))
        if not abs(total - 1.0) <= 1e-9:
            raise CheckFailure(
                f"{support.describe_corpus(train, n, k)}: the probabilities of the {len(vocab)} words "
                f"of {vocab} after the context {list(context)} sum to {total!r}, not 1",
                hint="V counts every word of the vocabulary, </s> and <unk> included: the denominator "
                "is count(context) + k * V, for seen and unseen contexts alike",
            )


@pytest.mark.points(1)
@settings(max_examples=15)
@given(case=support.corpora(max_n=4, max_sentences=8))
def test_k_to_zero_gives_the_maximum_likelihood_estimate(impl, case):
    train, n, _ = case
    queries = support.seen_queries(train, n)  # seen contexts only: with k = 0 the others are 0 / 0
    mle = ClosedForm(train, n, 0.0).probs(queries)
    assert_close(
        probs_of(fitted(impl, train, n, 0.0), queries),
        mle,
        name=f"{support.describe_corpus(train, n, 0.0)}: prob (k = 0: count(ctx + w) / count(ctx))",
        suspects=mistakes.on("probs", train, n, 0.0, queries),
    )
    assert_close(
        probs_of(fitted(impl, train, n, 1e-9), queries),
        mle,
        rtol=1e-6,
        atol=1e-8,
        name=f"{support.describe_corpus(train, n, 1e-9)}: prob, which should be within 1e-6 of the MLE",
    )


# --- perplexity, sampling and a known source (3 points) --------------------------------


@pytest.mark.points(1)
@settings(max_examples=15)
@given(case=support.corpora(max_n=4, max_sentences=8), test=support.corpora(max_n=1, max_sentences=4))
def test_perplexity_matches_closed_form(impl, case, test):
    train, n, k = case
    sentences = [s + [UNSEEN] * (i % 2) for i, s in enumerate(test[0])]
    assert_close(
        np.array(float(fitted(impl, train, n, k).perplexity(sentences))),
        np.array(ClosedForm(train, n, k).perplexity(sentences)),
        name=f"{support.describe_corpus(train, n, k)}: perplexity({sentences!r})",
        hint="exp(mean over every predicted token, </s> included, of -ln P(token | context))",
        suspects=mistakes.on("perplexity", train, n, k, sentences),
    )


@pytest.mark.points(1)
def test_generate(impl, draw):
    # A forced path: with k = 0 every word has one possible follower but "the".
    train = [["a", "b", "c", "the", "d"], ["the", "e"]]
    model = fitted(impl, train, 3, 0.0)
    check_equal(
        list(model.generate(["a"], 10, np.random.default_rng(0))),
        ["b", "c", "the", "d", "</s>"],
        name=f"NGramLM(3, k=0) on {train!r}: generate(['a'], 10, rng)",
        hint="each word from P(w | the last n - 1 words so far); stop right after </s>",
    )
    starts = {model.generate([], 1, np.random.default_rng(seed))[0] for seed in range(20)}
    if not starts <= {"a", "the"}:
        raise CheckFailure(
            f"NGramLM(3, k=0) on {train!r}: generate([], 1, rng) gave {sorted(starts)} over 20 seeds; "
            "only 'a' and 'the' ever follow <s> <s>",
            hint="an empty context is the start of a sentence: its n - 1 words are all <s>",
        )
    check_equal(
        len(model.generate(["a"], 2, np.random.default_rng(0))), 2, name="len(generate(['a'], 2, rng))"
    )
    # Frequencies: the first word after "the" in a smoothed bigram model, over many seeds.
    corpus = support.markov_source(int(draw.integers(0, 1000))).sample(80, seed=int(draw.integers(0, 10**6)))
    oracle = ClosedForm(corpus, 2, 0.1)
    model = fitted(impl, corpus, 2, 0.1)
    samples = 300  # one round trip each when sandboxed
    base = int(draw.integers(0, 10**6))
    seen = Counter(model.generate(["the"], 1, np.random.default_rng(base + i))[0] for i in range(samples))
    unknown = sorted(set(seen) - set(oracle.vocab))
    if unknown:
        raise CheckFailure(f"generate sampled {unknown}, which are not in the vocabulary {oracle.vocab}")
    want = oracle.probs([(w, ["the"]) for w in oracle.vocab])
    got = np.array([seen[w] / samples for w in oracle.vocab])
    distance = 0.5 * float(np.abs(got - want).sum())
    if not distance < 0.15:  # right: 0.05 on average, 0.09 at most over 30 seeds; uniform: >= 0.38
        raise CheckFailure(
            f"{samples} calls of generate(['the'], 1, default_rng(seed)) gave the words {dict(seen)}: "
            f"their frequencies are {distance:.3f} (total variation) from prob(w, ['the']), whose values "
            f"are {dict(zip(oracle.vocab, want.round(3).tolist()))}",
            hint="sample from the model's own probabilities over self.vocab: rng.choice(len(vocab), p=probs)",
        )
    twice = [model.generate(["the"], 6, np.random.default_rng(base)) for _ in range(2)]
    check_equal(list(twice[0]), list(twice[1]), name="two generate() calls with the same seed")


MARKOV_TRAIN, MARKOV_TEST, MARKOV_K = 5000, 2000, 0.01
# |ln(perplexity) - entropy rate| over seeds 0..11 of markov_source with these sizes
# (the reference): at most 0.019 nats, standard deviation 0.008. The limit is 6 of those.
MARKOV_TOLERANCE = 0.05


@pytest.mark.points(1)
def test_perplexity_on_a_markov_source_reaches_its_entropy_rate(impl, draw):
    seed = int(draw.integers(0, 10**6))
    source = support.markov_source(seed)
    train, test = source.sample(MARKOV_TRAIN, seed=seed + 1), source.sample(MARKOV_TEST, seed=seed + 2)
    got = float(fitted(impl, train, 2, MARKOV_K).perplexity(test))
    assert_close(
        np.array(got),
        np.array(ClosedForm(train, 2, MARKOV_K).perplexity(test)),
        name=f"perplexity of NGramLM(2, k={MARKOV_K}) on {MARKOV_TEST} sentences of markov_source({seed})",
        suspects=mistakes.on("perplexity", train, 2, MARKOV_K, test),
    )
    rate = source.entropy_rate()
    if not abs(math.log(got) - rate) <= MARKOV_TOLERANCE:
        raise CheckFailure(
            f"trained on {MARKOV_TRAIN} sentences of markov_source({seed}), your bigram model's perplexity "
            f"on {MARKOV_TEST} new ones is {got:.4f}; the source's exp(entropy rate) is {math.exp(rate):.4f} "
            f"(ln differ by {abs(math.log(got) - rate):.3f} > {MARKOV_TOLERANCE})",
            hint="a bigram model of a first-order Markov source learns its true probabilities: perplexity "
            "must come close to exp(entropy rate)",
        )


# --- speed (1 point) -----------------------------------------------------------------
# The rules' point is test_no_library_shortcuts, which the plugin generates from the
# catalog's `banned` (llmkit.plugin.bans; its call is support.check_one_call).


def counter_zip(sentences, n):
    counts: Counter = Counter()
    start = [BOS] * (n - 1)
    for sentence in sentences:
        padded = start + sentence + [EOS]
        counts.update(zip(*(padded[i:] for i in range(n))))
    return dict(counts)


# learner time / Counter(zip(...)) time on ~30k Zipf tokens over 50 words (n = 2),
# measured here (2 shared cores, medians of 5-7), in-process: the reference 0.8-1.0x, a
# plain loop over tokens with a dict 1.1x, nested dicts context -> word -> count
# 1.2-2.2x (noisy), counts += Counter(...) per sentence (quadratic) 11-17x. Sandboxed,
# both sides also pay for the corpus's trip to the worker: that mutant 3.8x.
SPEED_TOKENS, SPEED_VOCAB, SPEED_LIMIT = 30_000, 50, 2.0


@pytest.mark.points(1)
@pytest.mark.speed
def test_count_ngrams_speed(impl, draw, record_metric):
    seed = int(draw.integers(0, 10**6))
    assert_speed(
        impl.count_ngrams,
        counter_zip,
        lambda i: (support.zipf_corpus(SPEED_TOKENS, SPEED_VOCAB, seed=seed + i), 2),
        limit=SPEED_LIMIT,
        what=f"count_ngrams on {SPEED_TOKENS} tokens (n = 2)",
        baseline_name="Counter(zip(...))",
        hint="count with one Counter and counts.update(zip(...)) per sentence (or a dict and one loop); "
        "never rebuild or rescan all counts once per sentence (counts += Counter(...) does)",
        record_metric=record_metric,
        repeats=7,
    )
