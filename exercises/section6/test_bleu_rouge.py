"""Public tests for exercise 6.2 (BLEU and ROUGE). Run: pytest exercises/section6

They compare your corpus_bleu with sacrebleu (tokenize="none") and your ROUGE with
Google's rouge_score (whitespace tokens, no stemming): a few small cases that pin one
convention each, then random corpora with non-ASCII tokens, repeated n-grams, empty
sentences and 1-3 references per hypothesis. When a check fails it says which known
mistake your output looks like. The hidden graders draw many more cases, and time
your corpus_bleu against sacrebleu's.
"""

import pytest
from hypothesis import given, settings

from llmkit.testing import load_support

pytestmark = pytest.mark.exercise("6.2")
support = load_support("6.2")


def tokens(*sentences: str) -> list[list[str]]:
    return [s.split() for s in sentences]


# --- BLEU: one convention per test --------------------------------------------------


@pytest.mark.parametrize(
    "hypothesis, references",
    [
        # Papineni et al.'s example: 7 x "the", at most 2 in one reference.
        ("the the the the the the the", ["the cat is on the mat", "there is a cat on the mat"]),
        # "日本" is 3 times in the hypothesis, 2 + 1 times in the references: clip at 2 (max, not sum).
        ("日本 日本 日本 の 東京", ["日本 の 東京 日本", "東京 日本"]),
    ],
    ids=["the_x7", "max_not_sum"],
)
def test_matches_are_clipped_by_the_references(impl, hypothesis, references):
    hyps, refs = [hypothesis.split()], [tokens(*references)]
    support.check_bleu(
        impl.corpus_bleu(hyps, refs),
        hyps,
        refs,
        hint="clip each n-gram's count at its largest count in any ONE reference",
    )


def test_closest_reference_length_tie_goes_to_the_shorter(impl):
    # The hypothesis has 6 tokens; references of 5 and 7 are equally close: r = 5.
    hyps = tokens("the cat sat on the mat")
    refs = [
        tokens(
            "the cat sat on mats", "the cat was sitting on the mat", "there was a cat and it sat on the mat ."
        )
    ]
    support.check_bleu(impl.corpus_bleu(hyps, refs), hyps, refs, hint="on a tie, take the shorter reference")


def test_brevity_penalty_uses_the_closest_reference(impl):
    hyps = tokens("the cat sat on the mat", "a dog ran")
    refs = [
        tokens("a cat sat on the mat", "there was a cat and it sat on the mat ."),
        tokens("the dog ran away", "a dog ran"),
    ]
    support.check_bleu(
        impl.corpus_bleu(hyps, refs),
        hyps,
        refs,
        hint="r adds up, per sentence, the reference length closest to the hypothesis length",
    )


def test_corpus_bleu_pools_counts_over_sentences(impl):
    hyps = tokens("the cat sat on the mat", "a dog", "naïve café au lait")
    refs = [tokens("the cat sat on the mat"), tokens("the dog ran"), tokens("a naïve café au lait")]
    support.check_bleu(
        impl.corpus_bleu(hyps, refs),
        hyps,
        refs,
        hint="add up matches, totals and lengths over all sentences, then compute one score",
    )


@pytest.mark.parametrize(
    "hyps, refs, max_n, smooth",
    [
        ([[], ["a", "b"]], [[["a"]], [["a", "b", "c"]]], 4, "exp"),  # an empty hypothesis
        ([[]], [[["a", "b"]]], 4, "exp"),  # nothing at all: BP 0
        ([["a", "b"]], [[["a", "b", "c"]]], 4, "exp"),  # no 3-grams: p3 = p4 = 0, score 0
        ([["x", "y", "z"]], [[["a", "b", "c"]]], 4, "exp"),  # no match at all
        ([["a", "b", "x", "c"]], [[["a", "b", "c", "d"]]], 3, "none"),  # p2 > 0, p3 = 0, no smoothing
        ([["a"]], [[[], ["a", "b"]]], 2, "exp"),  # lengths 0 and 2 tie around 1: r = 0
    ],
    ids=["empty_hypothesis", "all_empty", "too_short_for_n", "no_match", "smooth_none", "empty_reference"],
)
def test_bleu_edge_cases(impl, hyps, refs, max_n, smooth):
    support.check_bleu(impl.corpus_bleu(hyps, refs, max_n=max_n, smooth=smooth), hyps, refs, max_n, smooth)


@settings(max_examples=12)
@given(case=support.bleu_cases())
def test_corpus_bleu_matches_sacrebleu(impl, case):
    hyps, refs, max_n, smooth = case
    support.check_bleu(impl.corpus_bleu(hyps, refs, max_n=max_n, smooth=smooth), hyps, refs, max_n, smooth)


# --- ROUGE --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2])
def test_rouge_n_precision_is_over_the_prediction(impl, n):
    pred, target = "the the cat", "the cat sat on the Straße"
    support.check_rouge(
        impl.rouge_n(pred, target, n),
        "rouge_n",
        pred,
        target,
        n,
        hint="precision: overlap / n-grams in pred; recall: overlap / n-grams in target",
    )


@settings(max_examples=10)
@given(case=support.rouge_cases(), n=support.st.integers(1, 4))
def test_rouge_n_matches_rouge_score(impl, case, n):
    pred, target = case
    support.check_rouge(impl.rouge_n(pred, target, n), "rouge_n", pred, target, n)


def test_rouge_l_uses_a_subsequence(impl):
    pred, target = "the big cat sat on the mat", "the cat sat on a mat"
    support.check_rouge(
        impl.rouge_l(pred, target), "rouge_l", pred, target, hint="the LCS may skip tokens on either side"
    )


@settings(max_examples=10)
@given(case=support.rouge_cases())
def test_rouge_l_matches_rouge_score(impl, case):
    pred, target = case
    support.check_rouge(impl.rouge_l(pred, target), "rouge_l", pred, target)


def test_rouge_lsum_unions_lcs_over_sentences(impl):
    pred = "the mat was red\nthe cat sat"
    target = "the cat sat on the mat\nthe mat was red\n"
    support.check_rouge(
        impl.rouge_lsum(pred, target),
        "rouge_lsum",
        pred,
        target,
        hint="split at newlines; per target sentence, union its LCS positions with every predicted sentence",
    )


@settings(max_examples=12)
@given(case=support.rouge_cases(lines=4))
def test_rouge_lsum_matches_rouge_score(impl, case):
    pred, target = case
    support.check_rouge(impl.rouge_lsum(pred, target), "rouge_lsum", pred, target)
