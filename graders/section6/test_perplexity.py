"""Hidden graders for exercise 6.1 (perplexity and calibration): 15 points.

Oracles, never the reference solution: ``F.cross_entropy`` in float64 on the shifted
logits, and a sliding-window perplexity that predicts every token by a model call of
its own (perplexity_oracle.py, beside this file: hidden, as they would hand over the
answer); torchmetrics' ``multiclass_calibration_error`` for the ECE (the support
module's calibration_oracle). The sliding-window models are llmkit.toymodels'
TinyTransformer, which a sandboxed worker rebuilds from the engine. Inputs come from
hypothesis (sizes) and seeded generators (values); the run's seed is printed and
replayable with --seed. The 15th point is the generated test_no_library_shortcuts.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import SEEDS, CheckFailure, Draw, load_oracle, load_support, unchanged

pytestmark = pytest.mark.exercise("6.1")
support, oracle = load_support("6.1"), load_oracle("6.1")
mistakes = support.MISCONCEPTIONS


def check_perplexity(impl, logits, labels, ignore_index, *, name=None, rtol=None, hint=None):
    with unchanged(logits, labels, names=["logits", "labels"]):
        got = impl.perplexity(logits, labels, ignore_index=ignore_index)
    support.check_metric(
        got,
        oracle.perplexity(logits, labels, ignore_index),
        name=name or support.describe_perplexity_case(logits, labels, ignore_index),
        rtol=rtol if rtol is not None else support.perplexity_rtol(logits.dtype),
        atol=0,
        hint=hint,
        suspects=mistakes.on("perplexity", logits, labels, ignore_index=ignore_index),
    )


# --- perplexity (6 points) ---------------------------------------------------------


@pytest.mark.points(3)
@settings(max_examples=40, deadline=None)
@given(case=support.perplexity_case(min_batch=1, max_batch=5, max_len=16))
def test_perplexity_matches_cross_entropy(impl, case):
    logits, labels, ignore_index = support.perplexity_inputs(case)
    check_perplexity(
        impl,
        logits,
        labels,
        ignore_index,
        hint="logits[:, t] predicts labels[:, t + 1]; labels equal to ignore_index do not count; "
        "exp(summed -log p / number of counted labels), natural log",
    )


@pytest.mark.points(2)
@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, n_long=st.integers(1, 4), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_perplexity_is_token_weighted(impl, seed, n_long, dtype):
    # One sequence scores a single token, the others up to 40: with masked prompts at
    # the start and padding at the end. Token-weighted, the long ones dominate.
    rng = Draw(seed)
    b, t, v = n_long + 1, 41, 9
    logits = rng.tensor(b, t, v, dtype=dtype, scale=2.5)
    labels = torch.as_tensor(rng.integers(0, v, size=(b, t)), dtype=torch.long)
    labels[0, 2:] = -100  # sequence 0: only label 1 counts
    for row in range(1, b):
        prompt, length = int(rng.integers(1, 10)), int(rng.integers(20, t + 1))
        labels[row, 1:prompt] = -100
        labels[row, length:] = -100
    check_perplexity(
        impl,
        logits,
        labels,
        -100,
        hint="one sum over every counted label of the batch, divided by their number: not a mean "
        "of the sequences' perplexities",
    )


@pytest.mark.points(1)
def test_perplexity_edge_cases(impl, draw):
    # Nothing to score gives NaN.
    for name, logits, labels in [
        ("T = 1", torch.zeros(2, 1, 5), torch.tensor([[1], [2]])),
        ("every label ignored", draw.tensor(2, 4, 5), torch.full((2, 4), -100)),
        (
            "only label 0 counts (it is never predicted)",
            draw.tensor(1, 3, 5),
            torch.tensor([[4, -100, -100]]),
        ),
    ]:
        value = support.as_number(impl.perplexity(logits, labels), f"perplexity with {name}")
        if not math.isnan(value):
            raise CheckFailure(
                f"perplexity with {name}: expected nan (no label to score), got {value}",
                hint="labels[:, 0] is never predicted; with no counted label return math.nan",
            )
    # A pad id that is also a token id (0), tiny probabilities, one counted token, V = 1.
    labels = torch.as_tensor(draw.integers(0, 6, size=(3, 7)), dtype=torch.long)
    labels[:, 5:] = 0
    check_perplexity(impl, draw.tensor(3, 7, 6, dtype=torch.float64), labels, 0)
    # Some labels 150 below the best logit: their probability underflows float32
    # (exp(-150) < 1e-45), so log(softmax(x)) gives -inf; a stable log-softmax does not.
    logits = draw.tensor(2, 6, 11, scale=2.0)
    big_gaps = torch.as_tensor(draw.integers(0, 11, size=(2, 6)), dtype=torch.long)
    for b, t in [(0, 2), (1, 4), (1, 5)]:
        logits[b, t - 1, big_gaps[b, t]] = logits[b, t - 1].max() - 150.0
    check_perplexity(
        impl,
        logits,
        big_gaps,
        -100,
        name="perplexity (float32) where some labels get probability exp(-150)",
        rtol=1e-4,
        hint="use a stable log-softmax (F.cross_entropy / F.log_softmax), not log(softmax(x))",
    )
    check_perplexity(
        impl, draw.tensor(2, 5, 4), torch.tensor([[1, 2, -100, -100, -100], [3] + [-100] * 4]), -100
    )
    check_perplexity(impl, draw.tensor(2, 4, 1), torch.zeros(2, 4, dtype=torch.long), -100)


# --- expected calibration error (6 points) -------------------------------------------


@pytest.mark.points(3)
@settings(max_examples=40, deadline=None)
@given(case=support.ece_case(min_n=1, max_n=300, max_bins=25))
def test_ece_matches_torchmetrics(impl, case):
    probs, labels, n_bins = support.ece_inputs(case)
    with unchanged(probs, labels, names=["probs", "labels"]):
        got = impl.expected_calibration_error(probs, labels, n_bins=n_bins)
    support.check_metric(
        got,
        support.calibration_oracle(probs, labels, n_bins),
        name=support.describe_ece_case(probs, labels, n_bins),
        rtol=0,
        atol=support.ECE_ATOL,
        hint="top label: confidence = max prob, correct = (argmax == label); equal-width bins "
        "[lower, upper); sum over bins of count / N * |accuracy - mean confidence|",
        suspects=mistakes.on("expected_calibration_error", probs, labels, n_bins=n_bins),
    )


@pytest.mark.points(1)
@settings(max_examples=10, deadline=None)
@given(seed=SEEDS, n_classes=st.integers(2, 6), n_bins=st.integers(1, 20), per_level=st.sampled_from([8, 16]))
def test_ece_is_zero_on_calibrated_data(impl, seed, n_classes, n_bins, per_level):
    # Confidence levels that are exact in float32; at each, exactly that share is right.
    levels = [0.5, 0.625, 0.75, 0.875, 1.0]
    confidences = [c for c in levels for _ in range(per_level)]
    right = [i < round(c * per_level) for c in levels for i in range(per_level)]
    order = np.random.default_rng(seed).permutation(len(confidences))
    probs, labels = support.edge_probs(
        [confidences[i] for i in order], n_classes, [right[i] for i in order], seed=seed
    )
    support.check_metric(
        impl.expected_calibration_error(probs, labels, n_bins=n_bins),
        0.0,
        name=f"expected_calibration_error of calibrated predictions ({n_classes} classes, n_bins={n_bins})",
        rtol=0,
        atol=support.ECE_ATOL,
        hint="in every bin the accuracy equals the mean confidence here, so every term is 0",
    )


@st.composite
def edge_case(draw_st):
    """Confidences exactly on torchmetrics' float32 edges, 1.0, and a few in between."""
    n_bins = draw_st(st.sampled_from([2, 3, 4, 5, 7, 8, 10, 15, 20]), label="n_bins")
    n_classes = draw_st(st.integers(2, 5), label="C")
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float32).tolist()
    usable = [e for e in edges if e >= 1.0 / n_classes] + [1.0]
    picks = draw_st(st.lists(st.sampled_from(usable), min_size=3, max_size=25), label="confidences on edges")
    steps = draw_st(st.lists(st.integers(1, 999), max_size=5), label="others, in thousandths above 1 / C")
    low = 1.0 / n_classes
    between = [float(np.float32(low + (1.0 - low) * k / 1000)) for k in steps]
    confidences = picks + between
    right = draw_st(
        st.lists(st.booleans(), min_size=len(confidences), max_size=len(confidences)), label="right"
    )
    return n_bins, n_classes, confidences, right, draw_st(SEEDS)


@pytest.mark.points(2)
@settings(max_examples=30, deadline=None)
@given(case=edge_case())
def test_ece_confidence_on_edges_and_certainty(impl, case):
    n_bins, n_classes, confidences, right, seed = case
    probs, labels = support.edge_probs(confidences, n_classes, right, seed=seed % 1000)
    support.check_metric(
        impl.expected_calibration_error(probs, labels, n_bins=n_bins),
        support.calibration_oracle(probs, labels, n_bins),
        name=f"expected_calibration_error(confidences {[round(c, 6) for c in confidences]}, "
        f"correct {right}, n_bins={n_bins})",
        rtol=0,
        atol=support.ECE_ATOL,
        hint="edges = torch.linspace(0, 1, n_bins + 1) in float32 and float32 confidences; "
        "edges[i] <= conf < edges[i + 1], and a confidence of exactly 1.0 in the last bin",
        suspects=mistakes.on("expected_calibration_error", probs, labels, n_bins=n_bins),
    )


# --- sliding windows (2 points) -------------------------------------------------------


@pytest.mark.points(2)
@settings(max_examples=15, deadline=None)
@given(case=support.sliding_case(max_len=40, max_context=12))
def test_sliding_window_matches_token_by_token(impl, case):
    length, context, stride, seed = case
    model = support.tiny_lm(seed, context)
    ids = support.token_ids(length, seed)
    with unchanged(ids, names=["ids"]):
        got = impl.sliding_window_perplexity(model, ids, context, stride)
    support.check_metric(
        got,
        oracle.sliding_window_perplexity(model, ids, context, stride),
        name=f"sliding_window_perplexity(L={length}, context={context}, stride={stride})",
        rtol=1e-5,
        atol=0,
        hint="window k reads ids[k*stride : min(k*stride + context, L - 1)] (never more than context "
        "tokens) and scores only the tokens no earlier window scored",
        suspects=mistakes.on("sliding_window_perplexity", model, ids, context, stride),
    )
