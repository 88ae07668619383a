"""Public tests for exercise 6.1 (perplexity and calibration). Run: pytest exercises/section6

They compare your metrics with torchmetrics' (its perplexity on the shifted logits, its
multiclass calibration error), on random batches drawn by hypothesis (a few examples
each: padded sequences, several ignore_index values, float32 and float64) and on small
fixed cases worked out in the README. When a check fails it says which known mistake
your output looks like. The hidden graders draw more examples and more edge cases.
"""

import math

import pytest
import torch
from hypothesis import given, settings

from llmkit.testing import load_support

pytestmark = pytest.mark.exercise("6.1")
support = load_support("6.1")
mistakes = support.MISCONCEPTIONS

# --- perplexity ---------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(case=support.perplexity_case())
def test_perplexity_matches_torchmetrics(impl, case):
    logits, labels, ignore_index = support.perplexity_inputs(case)
    support.check_metric(
        impl.perplexity(logits, labels, ignore_index=ignore_index),
        support.perplexity_oracle(logits, labels, ignore_index),
        name=support.describe_perplexity_case(logits, labels, ignore_index),
        rtol=support.perplexity_rtol(logits.dtype),
        atol=0,
        hint="pair logits[:, :-1] with labels[:, 1:], drop the labels equal to ignore_index, "
        "then exp(sum of -log p / number of counted labels)",
        suspects=mistakes.on("perplexity", logits, labels, ignore_index=ignore_index),
    )


def test_a_model_that_knows_nothing_has_perplexity_V(impl):
    # Equal logits give every token probability 1/V: perplexity is exactly V = 7,
    # "as unsure as a fair 7-sided die", whatever the labels.
    logits = torch.zeros(2, 5, 7, dtype=torch.float64)
    labels = torch.tensor([[3, 1, 4, 1, 5], [2, 6, 5, 3, 5]])
    support.check_metric(
        impl.perplexity(logits, labels),
        7.0,
        name="perplexity of uniform logits over V = 7 tokens",
        rtol=1e-8,
        atol=0,
        suspects=mistakes.on("perplexity", logits, labels),
    )


def test_perplexity_weighs_tokens_not_sequences(impl):
    # Sequence 0 has one counted label (the rest is padding), sequence 1 has five. The
    # batch's perplexity is exp of the mean over those 6 tokens, not the mean of two
    # per-sequence perplexities.
    logits = torch.arange(2 * 6 * 4, dtype=torch.float64).reshape(2, 6, 4).sin() * 3
    labels = torch.tensor([[0, 2, -100, -100, -100, -100], [1, 3, 0, 2, 1, 3]])
    support.check_metric(
        impl.perplexity(logits, labels),
        support.perplexity_oracle(logits, labels),
        name="perplexity of a batch with 1 and 5 counted labels",
        rtol=1e-8,
        atol=0,
        hint="sum -log p over all counted labels of the batch, then divide by their number (6)",
        suspects=mistakes.on("perplexity", logits, labels),
    )


def test_perplexity_with_nothing_to_score_is_nan(impl):
    one_position = impl.perplexity(torch.zeros(3, 1, 5), torch.tensor([[1], [2], [3]]))
    all_ignored = impl.perplexity(torch.zeros(1, 4, 5), torch.tensor([[1, -100, -100, -100]]))
    for name, value in [("T = 1 (nothing to predict)", one_position), ("every label ignored", all_ignored)]:
        value = support.as_number(value, name)
        if not math.isnan(value):
            raise support.CheckFailure(
                f"perplexity with {name}: expected nan, got {value}", hint="no counted label: return math.nan"
            )


# --- sliding windows ----------------------------------------------------------


@settings(max_examples=5, deadline=None)
@given(case=support.sliding_case(max_len=12, max_context=12))
def test_one_window_is_plain_perplexity(impl, case):
    length, context, _, seed = case
    context = max(context, length - 1)  # the whole text fits in one window
    model = support.tiny_lm(seed, context)
    ids = support.token_ids(length, seed)
    logits = support.model_logits(model, ids[:-1])
    support.check_metric(
        impl.sliding_window_perplexity(model, ids, context, context),
        support.perplexity_of_predictions(logits, ids[1:]),
        name=f"sliding_window_perplexity(L={length}, context={context}, stride={context}): one window",
        rtol=1e-5,
        atol=0,
        hint="one window reads ids[:-1] and scores every token 1 .. L-1",
    )


@settings(max_examples=8, deadline=None)
@given(case=support.sliding_case(max_len=30, max_context=8))
def test_each_token_is_scored_once(impl, case):
    # The bigram model's prediction depends on the current token only, so the window
    # placement changes nothing: any context and stride give the whole text's perplexity.
    length, context, stride, seed = case
    model = support.tiny_lm(seed, context, kind="bigram")
    ids = support.token_ids(length, seed)
    support.check_metric(
        impl.sliding_window_perplexity(model, ids, context, stride),
        support.whole_sequence_perplexity(model, ids, context),
        name=f"sliding_window_perplexity(bigram model, L={length}, context={context}, stride={stride})",
        rtol=1e-5,
        atol=0,
        hint="every token 1 .. L-1 is scored exactly once; divide by L - 1",
        suspects=mistakes.on("sliding_window_perplexity", model, ids, context, stride),
    )


@pytest.mark.parametrize(("length", "context", "stride"), list(support.HISTORIES))
def test_window_placement(impl, length, context, stride):
    # The positional model's prediction depends only on the position in the window, so
    # this checks that each token is predicted from the history in the docstring's table
    # (support.HISTORIES, worked out in the README).
    model = support.tiny_lm(7, context, kind="positional")
    ids = support.token_ids(length, 7)
    support.check_metric(
        impl.sliding_window_perplexity(model, ids, context, stride),
        support.positional_perplexity(model, ids, support.HISTORIES[(length, context, stride)], context),
        name=f"sliding_window_perplexity(positional model, L={length}, context={context}, stride={stride}), "
        f"tokens 1 .. {length - 1} predicted from {support.HISTORIES[(length, context, stride)]} tokens",
        rtol=1e-5,
        atol=0,
        hint="window k reads ids[k*stride : min(k*stride + context, L - 1)] and scores only its new tokens",
        suspects=mistakes.on("sliding_window_perplexity", model, ids, context, stride),
    )


# --- expected calibration error ------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(case=support.ece_case(min_n=30, min_bins=3))
def test_ece_matches_torchmetrics(impl, case):
    probs, labels, n_bins = support.ece_inputs(case)
    support.check_metric(
        impl.expected_calibration_error(probs, labels, n_bins=n_bins),
        support.calibration_oracle(probs, labels, n_bins),
        name=support.describe_ece_case(probs, labels, n_bins),
        rtol=0,
        atol=support.ECE_ATOL,
        hint="confidence = max prob, correct = (argmax == label); per bin |accuracy - mean confidence| "
        "weighted by count / N",
        suspects=mistakes.on("expected_calibration_error", probs, labels, n_bins=n_bins),
    )


def test_ece_confidences_on_bin_edges(impl):
    # n_bins = 4: edges 0, 0.25, 0.5, 0.75, 1. Each confidence on an edge belongs to the
    # bin above it; 1.0 belongs to the last bin, [0.75, 1]. (README: "6.1 — Which bin an
    # edge belongs to" works this case out by hand: ECE = 0.24375.)
    confidences = [0.25, 0.4, 0.5, 0.5, 0.75, 0.75, 0.8, 1.0]
    right = [False, False, True, True, True, True, True, False]
    probs, labels = support.edge_probs(confidences, 4, right)
    support.check_metric(
        impl.expected_calibration_error(probs, labels, n_bins=4),
        support.calibration_oracle(probs, labels, 4),
        name=f"expected_calibration_error(confidences {confidences}, correct {right}, n_bins=4)",
        rtol=0,
        atol=support.ECE_ATOL,
        hint="a confidence on an edge goes to the bin above it (edges[i] <= conf < edges[i + 1]); "
        "1.0 goes to the last bin",
        suspects=mistakes.on("expected_calibration_error", probs, labels, n_bins=4),
    )


def test_ece_is_zero_when_confidence_matches_accuracy(impl):
    # In every bin the share of right answers equals the confidence: 0.6 right 3 times
    # out of 5, 0.8 right 4 times out of 5, 1.0 always right.
    confidences = [0.6] * 5 + [0.8] * 5 + [1.0] * 2
    right = [True, True, True, False, False] + [True, True, True, True, False] + [True, True]
    probs, labels = support.edge_probs(confidences, 3, right, seed=1)
    support.check_metric(
        impl.expected_calibration_error(probs, labels, n_bins=10),
        0.0,
        name="expected_calibration_error of perfectly calibrated predictions",
        rtol=0,
        atol=support.ECE_ATOL,
    )
