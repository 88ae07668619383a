"""Public tests for exercise 0.1 (counting models). Run: pytest exercises/section0/test_counting.py

They start with a small example worked out by hand, then draw random documents and
corpora (a few examples each: empty documents and sentences, unseen words, every order
n from 1 to 4) and compare your answers with scikit-learn and nltk. When a check fails
it says which known mistake your output looks like. The hidden graders draw more
examples and also check the probabilities' sums, the k -> 0 limit, sampling, a text
whose best possible perplexity is known, and your counting speed.
"""

import numpy as np
import pytest
from hypothesis import given, settings

from llmkit.testing import CheckFailure, assert_close, check_equal, load_support

pytestmark = pytest.mark.exercise("0.1")
support = load_support("0.1")
mistakes = support.MISCONCEPTIONS

# --- a worked example --------------------------------------------------------------

TINY = [["the", "cat", "sat"], ["the", "dog", "sat"]]


def test_worked_example_bigram_probabilities(impl):
    # Padded for n = 2: "<s> the cat sat </s>" and "<s> the dog sat </s>".
    # Vocabulary: cat dog sat the </s> <unk>, so V = 6; with k = 1:
    #   P(the | <s>)  = (2 + 1) / (2 + 6) = 3/8   ("<s> the" twice, "<s>" twice as a context)
    #   P(cat | the)  = (1 + 1) / (2 + 6) = 2/8
    #   P(</s> | sat) = (2 + 1) / (2 + 6) = 3/8
    #   P(sat | cat)  = (1 + 1) / (1 + 6) = 2/7
    #   P(bird | the) = P(<unk> | the) = (0 + 1) / (2 + 6) = 1/8   (bird was never seen)
    #   P(the | dog)  = (0 + 1) / (1 + 6) = 1/7
    model = impl.NGramLM(2, k=1.0)
    model.fit(TINY)
    check_equal(
        list(model.vocab),
        ["</s>", "<unk>", "cat", "dog", "sat", "the"],
        name="NGramLM(2).fit(TINY).vocab",
        suspects=mistakes.on("vocab", TINY),
    )
    queries = [("the", []), ("cat", ["the"]), ("</s>", ["sat"]), ("sat", ["cat"]), ("bird", ["the"])]
    queries.append(("the", ["dog"]))
    got = np.array([model.prob(w, c) for w, c in queries], dtype=np.float64)
    assert_close(
        got,
        np.array([3 / 8, 2 / 8, 3 / 8, 2 / 7, 1 / 8, 1 / 7]),
        name=f"prob(word, context) for {queries}",
        hint="P(w | ctx) = (count(ctx + w) + k) / (count(ctx) + k * V), V = len(vocab) = 6 here",
        suspects=mistakes.on("probs", TINY, 2, 1.0, queries),
    )


# --- bag of words and TF-IDF -----------------------------------------------------------


@settings(max_examples=10)
@given(docs=support.documents())
def test_bag_of_words_matches_sklearn(impl, docs):
    support.check_bag_of_words(impl.bag_of_words(docs), docs)


@settings(max_examples=10)
@given(docs=support.documents())
def test_tfidf_matches_sklearn(impl, docs):
    support.check_tfidf(impl.tfidf(docs), docs)


# --- the n-gram model ------------------------------------------------------------------


@settings(max_examples=10)
@given(case=support.corpora())
def test_count_ngrams_matches_nltk(impl, case):
    train, n, _ = case
    got = impl.count_ngrams(train, n)
    if type(got) is not dict:
        raise CheckFailure(
            f"count_ngrams returned a {type(got).__name__}, not a dict",
            hint="return dict(counts): the graders accept only a plain dict",
        )
    check_equal(
        got,
        support.count_ngrams(train, n),
        name=f"count_ngrams({train!r}, n={n})",
        hint=f"pad each sentence with {n - 1} <s> on the left and one </s> on the right",
        suspects=mistakes.on("count_ngrams", train, n),
    )


@settings(max_examples=10)
@given(case=support.corpora())
def test_vocabulary(impl, case):
    train, n, k = case
    model = impl.NGramLM(n, k=k)
    model.fit(train)
    check_equal(
        list(model.vocab),
        support.vocabulary(train),
        name=f"{support.describe_corpus(train, n, k)}: vocab",
        hint="sorted: the training words, plus </s> and <unk>, but not <s>",
        suspects=mistakes.on("vocab", train),
    )


@settings(max_examples=10)
@given(case=support.corpora())
def test_prob_after_seen_contexts(impl, case):
    train, n, k = case
    model = impl.NGramLM(n, k=k)
    model.fit(train)
    queries = support.seen_queries(train, n)
    got = np.array([model.prob(w, c) for w, c in queries], dtype=np.float64)
    assert_close(
        got,
        support.ngram_probs(train, n, k, queries),
        name=f"{support.describe_corpus(train, n, k)}: prob(word, context) for every word after "
        "every context seen in training",
        hint="(count(context + word) + k) / (count(context) + k * V)",
        suspects=mistakes.on("probs", train, n, k, queries),
    )


@settings(max_examples=10)
@given(case=support.corpora(), data=support.st.data())
def test_prob_with_unseen_words_and_contexts(impl, case, data):
    train, n, k = case
    queries = data.draw(support.unseen_queries(train, n), label="queries")
    model = impl.NGramLM(n, k=k)
    model.fit(train)
    got = np.array([model.prob(w, c) for w, c in queries], dtype=np.float64)
    assert_close(
        got,
        support.ngram_probs(train, n, k, queries),
        name=f"{support.describe_corpus(train, n, k)}: prob(word, context) for {queries}",
        hint="unseen words (zebra) count as <unk>; only the last n - 1 context words matter; a short "
        "context is padded with <s> on the left; an unseen context gives every word 1 / V",
        suspects=mistakes.on("probs", train, n, k, queries),
    )


@settings(max_examples=10)
@given(case=support.corpora(), test=support.corpora(max_n=1, max_sentences=3))
def test_perplexity_matches_nltk(impl, case, test):
    train, n, k = case
    test_sentences = [s + [support.UNSEEN] * (i % 2) for i, s in enumerate(test[0])]
    model = impl.NGramLM(n, k=k)
    model.fit(train)
    assert_close(
        np.array(float(model.perplexity(test_sentences))),
        support.perplexity(train, n, k, test_sentences),
        name=f"{support.describe_corpus(train, n, k)}: perplexity({test_sentences!r})",
        hint="exp(mean over predicted tokens, </s> included, of -ln P(token | context))",
        suspects=mistakes.on("perplexity", train, n, k, test_sentences),
    )


def test_generate_follows_the_training_text(impl):
    # With k = 0 the model only says what it saw: after "sat" comes "on", after "on"
    # "the", after "the" "cat" or "mat" (half and half), after "mat" the end.
    train = [["the", "cat", "sat", "on", "the", "mat"]]
    model = impl.NGramLM(2, k=0.0)
    model.fit(train)
    check_equal(
        list(model.generate(["sat"], 2, np.random.default_rng(0))),
        ["on", "the"],
        name="generate(['sat'], 2, rng)",
    )
    check_equal(
        list(model.generate(["mat"], 5, np.random.default_rng(0))),
        ["</s>"],
        name="generate(['mat'], 5, rng)",
        hint="stop right after sampling </s>",
    )
    seen = set(support.count_ngrams(train, 2))
    for seed in range(5):
        words = list(model.generate(["the"], 12, np.random.default_rng(seed)))
        path = ["the", *words]
        unseen = [pair for pair in zip(path, path[1:]) if pair not in seen]
        if unseen or len(words) > 12 or (len(words) < 12 and words[-1:] != ["</s>"]):
            raise CheckFailure(
                f"generate(['the'], 12, default_rng({seed})) gave {words}: "
                + (f"the bigram {unseen[0]} never occurs in training" if unseen else "wrong length"),
                hint="sample each word from prob(w, words so far) over self.vocab; at most n_words "
                "words, stopping right after </s>",
            )
    runs = [model.generate(["the"], 12, np.random.default_rng(3)) for _ in range(2)]
    check_equal(
        list(runs[0]),
        list(runs[1]),
        name="two generate() calls with the same seed",
        hint="draw only from rng",
    )
