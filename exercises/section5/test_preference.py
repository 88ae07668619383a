"""Public tests for exercise 5.2 (SFT loss masking and DPO). Run: pytest exercises/section5

They draw batches of (prompt, response) pairs at random (a few examples each: empty
prompts and responses, pad = EOS, lists or tensors, float32 and float64) and compare
your functions with F.cross_entropy (ignore_index, float64) and with the DPO formula in
closed form: the labels and the padding, the shift, one mean over tokens, summed
log-probabilities, the loss and the rewards, gradients that reach the policy only, a
huge margin, and a short DPO run on a tiny transformer. When a check fails it says which
known mistake your output looks like. The hidden graders draw more examples and check
against other libraries.
"""

import pytest
import torch
from hypothesis import example, given, settings

from llmkit.testing import CheckFailure, as_plain_tensor, assert_close, load_support, value_and_grad

pytestmark = pytest.mark.exercise("5.2")
support = load_support("5.2")
mistakes = support.MISCONCEPTIONS

# Tried first by the hypothesis tests below: small cases where each known mistake shows.
# Two pairs of different lengths with non-empty prompts, pad = EOS, as lists.
PAIRS = (((3, 3), (1, 3)), 8, support.EOS, support.IGNORE_INDEX, True, 5)
LOGITS = (PAIRS, torch.float32, 1.0, 3)
DPO = (3, 0.1, torch.float32, 7)


# --- sft_labels --------------------------------------------------------------------


@settings(max_examples=8, deadline=None)
@given(case=support.pairs_case())
@example(case=PAIRS)
def test_sft_labels_count_the_response_only(impl, case):
    prompts, responses, ignore_index, pad_id = support.pairs_inputs(case)
    expected_ids, expected_labels = support.pack(prompts, responses, ignore_index, pad_id)
    out = impl.sft_labels(prompts, responses, ignore_index=ignore_index, pad_id=pad_id)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise CheckFailure(
            f"sft_labels should return a pair (input_ids, labels), got {type(out).__name__}",
            hint="return input_ids, labels",
        )
    name = support.describe_pairs(prompts, responses, ignore_index, pad_id)
    assert_close(
        out[0],
        expected_ids,
        name=f"input_ids of {name}",
        hint="row b is prompt_b + response_b, then pad_id up to the longest row; int64",
    )
    assert_close(
        out[1],
        expected_labels,
        name=f"labels of {name}",
        hint="ignore_index on the prompt and the padding, the response's tokens where they stand",
        suspects=mistakes.on(support.LABELS, prompts, responses, ignore_index=ignore_index, pad_id=pad_id),
    )


def test_sft_labels_needs_pairs(impl):
    with pytest.raises(ValueError):
        impl.sft_labels([[5, 6], [7]], [[1]])


# --- sft_loss and sequence_logprob ---------------------------------------------------


@settings(max_examples=8, deadline=None)
@given(case=support.logits_case())
@example(case=LOGITS)
def test_sft_loss_matches_cross_entropy(impl, case):
    logits, labels, ignore_index = support.logits_inputs(case)
    assert_close(
        impl.sft_loss(logits, labels, ignore_index=ignore_index),
        support.sft_loss_oracle(logits, labels, ignore_index),
        name=support.describe_logits("sft_loss", logits, labels, ignore_index),
        hint="F.cross_entropy(logits[:, :-1] flattened, labels[:, 1:] flattened, ignore_index=...)",
        suspects=mistakes.on("sft_loss", logits, labels, ignore_index=ignore_index),
    )


@settings(max_examples=8, deadline=None)
@given(case=support.logits_case())
@example(case=LOGITS)
def test_sequence_logprob_sums_the_response(impl, case):
    logits, labels, ignore_index = support.logits_inputs(case)
    assert_close(
        impl.sequence_logprob(logits, labels, ignore_index=ignore_index),
        support.sequence_logprob_oracle(logits, labels, ignore_index),
        name=support.describe_logits("sequence_logprob", logits, labels, ignore_index),
        hint="log_softmax(logits[:, :-1]), gather labels[:, 1:], zero the ignored ones, sum over positions",
        suspects=mistakes.on("sequence_logprob", logits, labels, ignore_index=ignore_index),
    )


def test_losses_are_differentiable_and_nan_when_nothing_counts(impl, draw):
    logits, labels, ignore_index = support.logits_inputs(
        ((((2, 3), (0, 4), (1, 1)), 6, 0, -1, False, draw.seed), torch.float64, 1.0, draw.seed)
    )
    weights = draw.tensor(len(labels), dtype=torch.float64)
    for fn, w, oracle in (
        ("sft_loss", torch.tensor(1.0, dtype=torch.float64), support.sft_loss_oracle),
        ("sequence_logprob", weights, support.sequence_logprob_oracle),
    ):
        got = value_and_grad(getattr(impl, fn), [logits, labels, ignore_index], w).inputs[0]
        leaf = logits.clone().requires_grad_(True)
        (want,) = torch.autograd.grad((oracle(leaf, labels, ignore_index) * w).sum(), [leaf])
        assert_close(got, want, name=f"gradient of {fn} w.r.t. logits", hint="keep the loss in autograd")
    nothing = torch.full((2, 3), -100)
    nothing[:, 0] = 4  # labels[:, 0] is never predicted
    loss = as_plain_tensor(impl.sft_loss(torch.zeros(2, 3, 5), nothing), "sft_loss")
    if not torch.isnan(loss):
        raise CheckFailure(
            f"sft_loss with no counted label (labels {nothing.tolist()}): expected nan (0 / 0), got {loss}",
            hint="F.cross_entropy's mean over zero counted labels is nan; do not clamp the count",
        )
    assert_close(
        impl.sequence_logprob(torch.zeros(2, 3, 5), nothing),
        torch.zeros(2),
        name=f"sequence_logprob with no counted label (labels {nothing.tolist()})",
        hint="an empty sum is 0",
    )


# --- dpo_loss ---------------------------------------------------------------------------


def check_dpo(out, values, beta, name):
    loss, chosen, rejected = support.as_triple(out, name)
    expected = support.dpo_oracle(*values, beta)
    for part, got, want in (
        ("dpo loss", loss, expected[0]),
        ("chosen reward", chosen, expected[1]),
        ("rejected reward", rejected, expected[2]),
    ):
        assert_close(
            got,
            want,
            name=f"{part} of {name}",
            hint="rewards beta * (policy - ref); loss mean(-logsigmoid(chosen_reward - rejected_reward))",
            suspects=mistakes.on(part, *values, beta),
            **support.dpo_tolerance(values[0].dtype),
        )


@settings(max_examples=8, deadline=None)
@given(case=support.dpo_case())
@example(case=DPO)
def test_dpo_loss_matches_the_formula(impl, case):
    values, beta = support.dpo_inputs(case)
    check_dpo(impl.dpo_loss(*values, beta), values, beta, support.describe_dpo(values, beta))


@settings(max_examples=5, deadline=None)
@given(case=support.dpo_case())
@example(case=DPO)
def test_dpo_gradients_reach_the_policy_only(impl, case):
    values, beta = support.dpo_inputs(case)
    b, dtype = len(values[0]), values[0].dtype
    name = support.describe_dpo(values, beta)
    zero = torch.zeros(b, dtype=dtype)
    grads = value_and_grad(
        impl.dpo_loss, [*values, beta], (torch.tensor(1.0, dtype=dtype), zero, zero)
    ).inputs
    expected = support.dpo_gradients(*values, beta)
    leak = max(float(grads[k].abs().max()) for k in (2, 3))
    if leak > 0:
        raise mistakes.failure(
            "reference_not_detached",
            f"gradient of the loss of {name} w.r.t. ref_chosen / ref_rejected: expected exactly 0, "
            f"got values up to {leak:.3g}",
            hint="ref_chosen.detach(), ref_rejected.detach() before using them",
        )
    for k, which in ((0, "policy_chosen"), (1, "policy_rejected")):
        assert_close(
            grads[k],
            expected[k],
            name=f"gradient of the loss of {name} w.r.t. {which}",
            hint="d loss / d policy_chosen = -beta * sigmoid(-z) / B, z = beta * (log-ratio margin)",
            **support.dpo_tolerance(dtype),
        )
    one = torch.ones(b, dtype=dtype)
    grads = value_and_grad(impl.dpo_loss, [*values, beta], (torch.tensor(0.0, dtype=dtype), one, one)).inputs
    if any(float(g.abs().max()) > 0 for g in grads[:4]):
        raise CheckFailure(
            f"the rewards returned by {name} carry gradients: they are for logging, return them detached",
            hint="return loss, chosen_reward.detach(), rejected_reward.detach()",
        )


def test_dpo_loss_is_finite_for_huge_margins(impl):
    # Sequence log-probabilities are sums over hundreds of tokens: margins in the thousands
    # happen. Pair 0: z = 0.5 * (-2980 - 10) = -1495, loss 1495; pair 1: z = +1495, loss ~0.
    for dtype in (torch.float32, torch.float64):
        values = [
            torch.tensor(v, dtype=dtype)
            for v in ([-3000.0, -10.0], [-10.0, -3000.0], [-20.0] * 2, [-20.0] * 2)
        ]
        check_dpo(impl.dpo_loss(*values, 0.5), values, 0.5, support.describe_dpo(values, 0.5))


# --- a short DPO run ------------------------------------------------------------------


def test_dpo_training_raises_the_margin(impl, draw):
    task = support.preference_task(draw.seed, n=16)
    run = support.dpo_train(impl, task, steps=10, lr=1e-2, beta=0.1, seed=draw.seed)
    margins = support.reward_margins(run.policy, run.reference, task, 0.1)
    mean, share = float(margins.mean()), float((margins > 0).double().mean())
    message = (
        f"10 Adam steps of DPO (beta 0.1, lr 1e-2) on 16 pairs with your sequence_logprob and dpo_loss: "
        f"the reward margin beta * ((pi_c - ref_c) - (pi_r - ref_r)) averages {mean:.3g} over the pairs "
        f"and is positive for {share:.0%} of them; expected at least 1.0 and 90 %"
    )
    if mean < -1.0:
        raise mistakes.failure("chosen_rejected_swapped", message + " (it went DOWN: the rejected gained)")
    if not (mean >= 1.0 and share >= 0.9):
        raise CheckFailure(
            message, hint="gradients must reach policy_chosen and policy_rejected, not the reference"
        )
