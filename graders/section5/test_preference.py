"""Hidden graders for exercise 5.2 (SFT loss masking and DPO): 20 points.

Oracles, never the reference solution: ``pad_sequence`` for the packed batch,
``torch.distributions.Categorical`` on the shifted float64 logits for the token
log-probabilities, and the DPO loss pair by pair in Python floats (preference_oracle.py,
beside this file); the support module's F.cross_entropy oracles only name the likely
mistakes. The DPO run trains a TinyTransformer policy on this side (support.dpo_train):
the learner's sequence_logprob and dpo_loss are only called, and the verdict (the reward
margins of the trained policy) is computed here. Sizes come from hypothesis, values from
seeded generators; the run's seed is printed and replayable with --seed.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    SEEDS,
    CheckFailure,
    Draw,
    as_plain_tensor,
    assert_close,
    assert_finite,
    check_equal,
    load_oracle,
    load_support,
    unchanged,
    value_and_grad,
)

pytestmark = pytest.mark.exercise("5.2")
support, oracle = load_support("5.2"), load_oracle("5.2")
mistakes = support.MISCONCEPTIONS


def call_sft_labels(impl, prompts, responses, ignore_index, pad_id):
    tensors = [t for t in (*prompts, *responses) if isinstance(t, torch.Tensor)]
    with unchanged(*tensors, names=[f"sequence {i}" for i in range(len(tensors))]):
        out = impl.sft_labels(prompts, responses, ignore_index=ignore_index, pad_id=pad_id)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise CheckFailure(
            f"sft_labels should return a pair (input_ids, labels), got {type(out).__name__}",
            hint="return input_ids, labels",
        )
    return out


def check_packed(impl, prompts, responses, ignore_index, pad_id):
    ids, labels = call_sft_labels(impl, prompts, responses, ignore_index, pad_id)
    want_ids, want_labels = oracle.packed(prompts, responses, ignore_index, pad_id)
    name = support.describe_pairs(prompts, responses, ignore_index, pad_id)
    assert_close(
        ids,
        want_ids,
        name=f"input_ids of {name}",
        hint="row b is prompt_b + response_b, then pad_id up to the longest row; int64",
    )
    assert_close(
        labels,
        want_labels,
        name=f"labels of {name}",
        hint="ignore_index on the prompt and the padding (by position), the response where it stands",
        suspects=mistakes.on(support.LABELS, prompts, responses, ignore_index=ignore_index, pad_id=pad_id),
    )


# --- sft_labels (4 points) -----------------------------------------------------------


@pytest.mark.points(3)
@settings(max_examples=40, deadline=None)
@given(case=support.pairs_case(max_batch=6, max_len=8))
def test_sft_labels_match_pad_sequence(impl, case):
    prompts, responses, ignore_index, pad_id = support.pairs_inputs(case)
    check_packed(impl, prompts, responses, ignore_index, pad_id)


@pytest.mark.points(1)
def test_sft_labels_edge_cases(impl, draw):
    eos = support.EOS
    cases = [
        ("every pair empty", [[], []], [[], []], -100, 0),
        ("one pair", [[4, 5, 6]], [[7, eos]], -100, eos),
        ("an empty prompt", [[], [3, 3]], [[2, eos], [eos]], -1, eos),
        ("an empty response", [[2, 3], [4]], [[], [5, 6, eos]], -100, 0),
        ("a response of pad tokens", [[2]], [[0, 0, 0]], -100, 0),
        ("a prompt of pad tokens, pad = eos", [[eos, eos], [3]], [[2, eos], [eos, 4, 5, eos]], -100, eos),
    ]
    for what, prompts, responses, ignore_index, pad_id in cases:
        for as_tensors in (False, True):
            if as_tensors:
                prompts = [torch.tensor(p, dtype=torch.long) for p in prompts]
                responses = [torch.tensor(r, dtype=torch.long) for r in responses]
            try:
                check_packed(impl, prompts, responses, ignore_index, pad_id)
            except CheckFailure as failure:
                raise CheckFailure(f"[{what}] {failure}", hint=failure.hint) from None
    with pytest.raises(ValueError):
        impl.sft_labels([[5, 6], [7]], [[eos]])
    with pytest.raises(ValueError):
        impl.sft_labels([[5, 6]], [[eos], [2, eos]])


# --- sft_loss and sequence_logprob (7 points) ------------------------------------------


@pytest.mark.points(3)
@settings(max_examples=40, deadline=None)
@given(case=support.logits_case(max_batch=6, max_len=8))
def test_sft_loss_matches_categorical(impl, case):
    logits, labels, ignore_index = support.logits_inputs(case)
    with unchanged(logits, labels, names=["logits", "labels"]):
        got = impl.sft_loss(logits, labels, ignore_index=ignore_index)
    assert_close(
        got,
        oracle.sft_loss(logits, labels, ignore_index),
        name=support.describe_logits("sft_loss", logits, labels, ignore_index),
        hint="logits[:, t] predicts labels[:, t + 1]; one mean over every counted label of the batch",
        suspects=mistakes.on("sft_loss", logits, labels, ignore_index=ignore_index),
    )


@pytest.mark.points(2)
@settings(max_examples=30, deadline=None)
@given(case=support.logits_case(max_batch=6, max_len=8))
def test_sequence_logprob_matches_categorical(impl, case):
    logits, labels, ignore_index = support.logits_inputs(case)
    with unchanged(logits, labels, names=["logits", "labels"]):
        got = impl.sequence_logprob(logits, labels, ignore_index=ignore_index)
    assert_close(
        got,
        oracle.sequence_logprob(logits, labels, ignore_index),
        name=support.describe_logits("sequence_logprob", logits, labels, ignore_index),
        hint="the SUM over positions of log p(labels[:, t + 1] | logits[:, t]), ignored labels adding 0",
        suspects=mistakes.on("sequence_logprob", logits, labels, ignore_index=ignore_index),
    )


@pytest.mark.points(2)
@settings(max_examples=8, deadline=None)
@given(case=support.logits_case(max_batch=4, max_len=6))
def test_gradients_and_empty_batches(impl, case):
    logits, labels, ignore_index = support.logits_inputs(case)
    logits = logits.to(torch.float64)
    weights = Draw(case[-1]).tensor(len(labels), dtype=torch.float64)
    for fn, w, reference in (
        ("sft_loss", torch.tensor(1.0, dtype=torch.float64), oracle.sft_loss),
        ("sequence_logprob", weights, oracle.sequence_logprob),
    ):
        got = value_and_grad(getattr(impl, fn), [logits, labels, ignore_index], w).inputs[0]
        leaf = logits.clone().requires_grad_(True)
        (want,) = torch.autograd.grad((reference(leaf, labels, ignore_index) * w).sum(), [leaf])
        assert_close(
            got,
            torch.nan_to_num(want),  # no counted label: the mean is nan, its gradient 0 (no term)
            name=f"gradient of {support.describe_logits(fn, logits, labels, ignore_index)} w.r.t. logits",
            hint="keep the computation in autograd (no .item(), .detach() or torch.no_grad())",
        )
    # Nothing to count: T = 1 (nothing is predicted), or every label after position 0 ignored.
    for what, labels in (
        ("T = 1", torch.tensor([[3], [4]])),
        ("every label ignored", torch.tensor([[3, -100, -100], [-100, -100, -100]])),
    ):
        zeros = torch.zeros(*labels.shape, 5)
        loss = as_plain_tensor(impl.sft_loss(zeros, labels), "sft_loss")
        if loss.shape != () or not torch.isnan(loss):
            raise CheckFailure(
                f"sft_loss with {what} (labels {labels.tolist()}): expected a 0-dim nan (0 / 0), got {loss}",
                hint="F.cross_entropy's mean over zero counted labels is nan",
            )
        assert_close(
            impl.sequence_logprob(zeros, labels),
            torch.zeros(2),
            name=f"sequence_logprob with {what} (labels {labels.tolist()})",
            hint="an empty sum is 0",
        )


# --- dpo_loss (6 points) -----------------------------------------------------------------


def dpo_values(b: int, beta: float, dtype, seed: int, spread: float):
    rng = Draw(seed)
    ref = [-30.0 + 10.0 * rng.tensor(b, dtype=torch.float64).abs() for _ in range(2)]
    return [
        t.to(dtype)
        for t in (
            ref[0] + spread * rng.tensor(b, dtype=torch.float64),
            ref[1] + spread * rng.tensor(b, dtype=torch.float64),
            ref[0],
            ref[1],
        )
    ]


def check_dpo(impl, values, beta):
    name = support.describe_dpo(values, beta)
    with unchanged(*values, names=["policy_chosen", "policy_rejected", "ref_chosen", "ref_rejected"]):
        out = support.as_triple(impl.dpo_loss(*values, beta), name)
    expected = oracle.dpo(*values, beta)
    for part, got, want in zip(("dpo loss", "chosen reward", "rejected reward"), out, expected):
        assert_close(
            got,
            want,
            name=f"{part} of {name}",
            hint="rewards beta * (policy - ref); loss: mean of -logsigmoid(chosen - rejected reward)",
            suspects=mistakes.on(part, *values, beta),
            **support.dpo_tolerance(values[0].dtype),
        )


@pytest.mark.points(3)
@settings(max_examples=50, deadline=None)
@given(
    b=st.integers(1, 8),
    beta=st.sampled_from([0.1, 0.5, 2.0, 0.01, 5.0]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    spread=st.sampled_from([0.0, 1.0, 10.0]),
    seed=SEEDS,
)
def test_dpo_loss_matches_the_closed_form(impl, b, beta, dtype, spread, seed):
    check_dpo(impl, dpo_values(b, beta, dtype, seed, spread), beta)


@pytest.mark.points(2)
@settings(max_examples=15, deadline=None)
@given(b=st.integers(1, 8), beta=st.sampled_from([0.1, 0.5, 2.0]), seed=SEEDS)
def test_dpo_gradients_reach_the_policy_only(impl, b, beta, seed):
    values = dpo_values(b, beta, torch.float64, seed, 3.0)
    name = support.describe_dpo(values, beta)
    zero, one = torch.zeros(b, dtype=torch.float64), torch.ones(b, dtype=torch.float64)
    grads = value_and_grad(
        impl.dpo_loss, [*values, beta], (torch.tensor(1.0, dtype=torch.float64), zero, zero)
    )
    leak = max(float(grads.inputs[k].abs().max()) for k in (2, 3))
    if leak > 0:
        raise mistakes.failure(
            "reference_not_detached",
            f"gradient of the loss of {name} w.r.t. ref_chosen / ref_rejected: expected exactly 0, got "
            f"values up to {leak:.3g}",
            hint="detach ref_chosen and ref_rejected: the reference model is a constant",
        )
    leaves = [t.clone().requires_grad_(True) for t in values]
    expected = torch.autograd.grad(oracle.dpo_autograd_loss(*leaves, beta), leaves[:2])
    for k, which in ((0, "policy_chosen"), (1, "policy_rejected")):
        assert_close(
            grads.inputs[k],
            expected[k],
            name=f"gradient of the loss of {name} w.r.t. {which}",
            hint="d loss / d policy_chosen = -beta sigmoid(-z) / B with z = beta * (log-ratio margin)",
            **support.dpo_tolerance(torch.float64),
        )
    rewards = value_and_grad(
        impl.dpo_loss, [*values, beta], (torch.tensor(0.0, dtype=torch.float64), one, one)
    )
    if any(float(g.abs().max()) > 0 for g in rewards.inputs[:4]):
        raise CheckFailure(
            f"the rewards returned by {name} carry gradients: they are for logging, return them detached",
            hint="return loss, chosen_reward.detach(), rejected_reward.detach()",
        )


@pytest.mark.points(1)
def test_dpo_loss_is_finite_for_huge_margins(impl):
    # Margins of +-1e4 nats: sigmoid underflows to 0 (and rounds to 1) in both dtypes.
    for dtype in (torch.float32, torch.float64):
        pc = torch.tensor([-1e4, -5.0, -2e4, -7.0], dtype=dtype)
        pr = torch.tensor([-5.0, -1e4, -3.0, -2e4], dtype=dtype)
        ref = torch.full((4,), -6.0, dtype=dtype)
        values = [pc, pr, ref, ref.clone()]
        check_dpo(impl, values, 1.0)
        zero = torch.zeros(4, dtype=dtype)
        weights = (torch.tensor(1.0, dtype=dtype), zero, zero)
        grads = value_and_grad(impl.dpo_loss, [*values, 1.0], weights).inputs
        for k, which in ((0, "policy_chosen"), (1, "policy_rejected")):
            assert_finite(
                grads[k],
                name=f"gradient w.r.t. {which} at margins of ±1e4 ({dtype})",
                hint="use F.logsigmoid",
            )
        assert_close(
            grads[0],
            torch.tensor([-0.25, 0.0, -0.25, 0.0], dtype=dtype),  # -beta sigmoid(-z) / B
            name=f"gradient w.r.t. policy_chosen at margins of ±1e4 ({dtype})",
            rtol=0,
            atol=1e-6,
        )


# --- DPO training (3 points) --------------------------------------------------------------

TRAIN_PAIRS, TRAIN_STEPS, TRAIN_LR, TRAIN_BETA = 32, 30, 1e-2, 0.1
MIN_MARGIN, MIN_SHARE = 2.0, 0.95


@pytest.mark.points(3)
def test_dpo_training_raises_the_chosen_over_rejected_margin(impl, draw):
    task = support.preference_task(draw.seed, n=TRAIN_PAIRS)
    run = support.dpo_train(impl, task, steps=TRAIN_STEPS, lr=TRAIN_LR, beta=TRAIN_BETA, seed=draw.seed)
    margins = support.reward_margins(run.policy, run.reference, task, TRAIN_BETA)
    mean, share = float(margins.mean()), float((margins > 0).double().mean())
    message = (
        f"{TRAIN_STEPS} Adam steps of DPO (beta {TRAIN_BETA}, lr {TRAIN_LR}) on {TRAIN_PAIRS} kit-made "
        f"pairs with your sequence_logprob and dpo_loss: the reward margin beta * ((pi_c - ref_c) - "
        f"(pi_r - ref_r)) of the trained policy averages {mean:.3g} and is positive for {share:.0%} of the "
        f"pairs; expected at least {MIN_MARGIN} and {MIN_SHARE:.0%}"
    )
    if mean < -MIN_MARGIN:
        raise mistakes.failure("chosen_rejected_swapped", message + " (it went DOWN: the rejected gained)")
    if not (mean >= MIN_MARGIN and share >= MIN_SHARE):
        raise CheckFailure(message, hint="the loss must fall as log pi(chosen) gains on log pi(rejected)")
    check_equal(len(run.losses), TRAIN_STEPS, name="training steps run")
