"""Public tests for exercise 3.2 (Decoding and sampling). Run: pytest exercises/section3

The filters are compared with their definitions (exercises/support/section3/decoding.py:
a token's rank is how many tokens beat it, its "mass before" the probability of those
that beat it) on logits drawn at random, some already -inf, some full of ties, and on
a few small examples worked out by hand. Sampling and generation are checked with
chi-square tests against the exact law of the tokens (significance 1e-6, fixed seeds);
beam search against every possible sequence of a tiny model. When a check fails it
says which known mistake your output looks like. The hidden graders compare with
Hugging Face transformers' processors and also time the filters on GPT-2-sized logits.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import assert_close, check_equal, load_support

pytestmark = pytest.mark.exercise("3.2")
support = load_support("3.2")
mistakes = support.MISCONCEPTIONS


def probs_to_logits(*probs: float) -> torch.Tensor:
    return torch.tensor(probs, dtype=torch.float64).log()


# --- temperature, top-k, top-p, repetition penalty -------------------------------------


@settings(max_examples=6)
@given(case=support.filter_case(), t=st.sampled_from([0.25, 0.7, 1.0, 1.5, 4.0]))
def test_temperature_divides_the_logits(impl, case, t):
    logits = support.draw_logits(case)
    out = support.call_untouched(impl.apply_temperature, logits, t, name="apply_temperature")
    assert_close(out, support.temperature_oracle(logits, t), name=f"apply_temperature(logits {case[0]}, {t})")
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError):
            impl.apply_temperature(logits, bad)


@settings(max_examples=10)
@given(case=support.filter_case(), k=st.integers(1, 14), min_keep=st.integers(1, 3))
def test_top_k_matches_its_definition(impl, case, k, min_keep):
    logits = support.draw_logits(case)
    out = support.call_untouched(impl.top_k_filter, logits, k, min_keep=min_keep, name="top_k_filter")
    support.check_filtered(
        out,
        support.top_k_oracle(logits, k, min_keep),
        name=f"top_k_filter(logits {case[0]}, k={k}, min_keep={min_keep})",
        hint="keep the tokens whose logit is >= the max(k, min_keep)-th largest of the row, -inf elsewhere",
        suspects=mistakes.on("top_k_filter", logits, k, min_keep=min_keep),
    )


@settings(max_examples=8)
@given(case=support.tied_case(), k=st.integers(1, 6))
def test_top_k_keeps_ties(impl, case, k):
    logits = support.draw_tied_logits(case)
    out = support.call_untouched(impl.top_k_filter, logits, k, name="top_k_filter")
    support.check_filtered(
        out,
        support.top_k_oracle(logits, k),
        name=f"top_k_filter(logits {logits.tolist()}, k={k})",
        hint="compare with the k-th largest VALUE: logits < topk(logits, k).values[..., -1:] are dropped",
        suspects=mistakes.on("top_k_filter", logits, k),
    )
    with pytest.raises(ValueError):
        impl.top_k_filter(logits, 0)


@settings(max_examples=12)
@given(case=support.filter_case(), p=st.floats(0.0, 0.99), min_keep=st.integers(1, 3))
def test_top_p_matches_its_definition(impl, case, p, min_keep):
    logits = support.draw_logits(case)
    out = support.call_untouched(impl.top_p_filter, logits, p, min_keep=min_keep, name="top_p_filter")
    support.check_filtered(
        out,
        support.top_p_oracle(logits, p, min_keep),
        name=f"top_p_filter(logits {case[0]}, p={p:.4g}, min_keep={min_keep}); "
        + support.kept_summary(logits, support.top_p_oracle(logits, p, min_keep)),
        hint="rank by probability, keep a token when the mass ranked before it is < p",
        suspects=mistakes.on("top_p_filter", logits, p, min_keep=min_keep),
    )


# (probabilities in vocabulary order, p, min_keep, the tokens kept)
TOP_P_EXAMPLES = [
    ((0.5, 0.3, 0.2), 0.6, 1, [0, 1]),  # 0.5 < 0.6: the second token crosses p and stays
    ((0.5, 0.3, 0.2), 0.45, 1, [0]),
    ((0.5, 0.3, 0.2), 0.85, 1, [0, 1, 2]),
    ((0.2, 0.5, 0.3), 0.6, 1, [1, 2]),  # the same distribution, shuffled
    ((0.05, 0.1, 0.6, 0.25), 0.7, 1, [2, 3]),
    ((0.05, 0.1, 0.6, 0.25), 0.0, 2, [2, 3]),  # p = 0 keeps min_keep tokens
    ((0.05, 0.1, 0.6, 0.25), 1.0, 1, [0, 1, 2, 3]),
]


@pytest.mark.parametrize("probs, p, min_keep, kept", TOP_P_EXAMPLES)
def test_top_p_examples(impl, probs, p, min_keep, kept):
    logits = probs_to_logits(*probs)
    expected = logits.masked_fill(~torch.isin(torch.arange(len(probs)), torch.tensor(kept)), -math.inf)
    out = support.call_untouched(impl.top_p_filter, logits, p, min_keep=min_keep, name="top_p_filter")
    support.check_filtered(
        out,
        expected,
        name=f"top_p_filter(log {list(probs)}, p={p}, min_keep={min_keep}) must keep tokens {kept}",
        hint="the token that takes the total to p or beyond is kept",
        suspects=mistakes.on("top_p_filter", logits, p, min_keep=min_keep),
    )
    with pytest.raises(ValueError):
        impl.top_p_filter(logits, 1.5)


@settings(max_examples=10)
@given(case=support.penalty_case())
def test_repetition_penalty_matches_its_definition(impl, case):
    logits, ids = support.draw_penalty_inputs(case)
    penalty = case[4]
    out = support.call_untouched(impl.repetition_penalty, logits, ids, penalty, name="repetition_penalty")
    assert_close(
        out,
        support.penalty_oracle(logits, ids, penalty),
        name=f"repetition_penalty(logits {tuple(logits.shape)}, input_ids {ids.tolist()}, {penalty})",
        hint="each distinct id once: x * penalty where x < 0, x / penalty elsewhere",
        suspects=mistakes.on("repetition_penalty", logits, ids, penalty),
    )


def test_repetition_penalty_example(impl):
    logits = torch.tensor([[2.0, -2.0, 0.5, 0.0, -1.0]])
    ids = torch.tensor([[0, 1, 1, 3, 1]])  # token 1 three times, token 2 and 4 never
    expected = torch.tensor([[1.0, -4.0, 0.5, 0.0, -1.0]])
    assert_close(
        support.call_untouched(impl.repetition_penalty, logits, ids, 2.0, name="repetition_penalty"),
        expected,
        name="repetition_penalty([[2, -2, 0.5, 0, -1]], [[0, 1, 1, 3, 1]], 2.0)",
        suspects=mistakes.on("repetition_penalty", logits, ids, 2.0),
    )
    with pytest.raises(ValueError):
        impl.repetition_penalty(logits, ids, 0.0)


def test_filters_leave_their_input_alone(impl, draw):
    logits = draw.tensor(3, 9, scale=2.0)
    ids = torch.tensor([[1, 1, 4], [0, 8, 2], [5, 5, 5]])
    support.call_untouched(impl.apply_temperature, logits, 0.5, name="apply_temperature")
    support.call_untouched(impl.top_k_filter, logits, 3, name="top_k_filter")
    support.call_untouched(impl.top_p_filter, logits, 0.5, name="top_p_filter")
    support.call_untouched(impl.repetition_penalty, logits, ids, 1.5, name="repetition_penalty")


# --- sampling ---------------------------------------------------------------------------


def test_sample_follows_softmax_and_the_seed(impl):
    logits = torch.tensor([1.0, -math.inf, 0.2, 2.0, -0.5, 1.1])
    n = 4000
    draws = impl.sample(logits.expand(n, -1).clone(), generator=1234)
    assert isinstance(draws, torch.Tensor) and draws.dtype == torch.int64 and draws.shape == (n,), (
        f"sample((4000, 6) logits) must give a (4000,) int64 tensor, got {draws!r:.80}"
    )
    support.check_counts(
        torch.bincount(draws, minlength=6),
        torch.softmax(logits.double(), -1),
        name="4000 draws of sample(one row of logits)",
        hint="torch.multinomial(softmax(logits), 1, generator=g); -inf has probability 0",
    )
    shaped = impl.sample(torch.zeros(2, 3, 4), generator=0)
    assert shaped.shape == (2, 3) and shaped.dtype == torch.int64, (
        f"sample of (2, 3, 4) logits must give a (2, 3) int64 tensor, "
        f"got {tuple(shaped.shape)} {shaped.dtype}"
    )
    again = impl.sample(logits.expand(n, -1).clone(), generator=1234)
    rows = logits.expand(50, -1).clone()
    same_generator = [impl.sample(rows, torch.Generator().manual_seed(9)) for _ in "ab"]
    if not torch.equal(again, draws) or not torch.equal(*same_generator):
        raise mistakes.failure(
            "generator_ignored", "sample(logits, generator=1234) twice gave different tokens"
        )


# --- generation on a tiny model ---------------------------------------------------------

GREEDY_TABLE_SEED = 2
GREEDY_PROMPT = torch.tensor([[0, 2, 2], [5, 1, 4], [3, 3, 3]])


def test_greedy_generation_with_a_repetition_penalty(impl):
    table = support.random_table(6, GREEDY_TABLE_SEED)
    lm = impl.NGramLM(table)
    steps, penalty = 6, 1.8
    out = impl.generate(lm, GREEDY_PROMPT, steps, top_k=1, repetition_penalty=penalty, generator=0)
    expected = support.greedy_tokens(table, GREEDY_PROMPT, steps, penalty)
    check_equal(
        torch.as_tensor(out).tolist(),
        expected,
        name=f"generate(NGramLM(6 x 6 table), prompts {GREEDY_PROMPT.tolist()}, {steps}, top_k=1, "
        f"repetition_penalty={penalty})",
        hint="each step: step_fn on the whole sequence so far, the penalty on every token so far, "
        "then temperature, top-k, top-p, sample",
        suspects=mistakes.on("greedy_tokens", table, GREEDY_PROMPT, steps, penalty),
    )
    assert lm.calls == steps, (
        f"generate called step_fn {lm.calls} times for {steps} new tokens: once per step, for the whole batch"
    )


LAW_SETTINGS = dict(temperature=1.8, top_k=5, top_p=0.75, repetition_penalty=1.6)
LAW_PROMPT = [1, 3, 3]


def test_generate_samples_the_filtered_distribution(impl):
    table = support.random_table(6, 1)
    n, steps = 3000, 2
    prompts = torch.tensor([LAW_PROMPT]).expand(n, -1).clone()
    out = impl.generate(impl.NGramLM(table), prompts, steps, generator=77, **LAW_SETTINGS)
    assert out.shape == (n, len(LAW_PROMPT) + steps) and torch.equal(out[:, :3], prompts), (
        f"generate must return the prompts then the new tokens: (3000, 5), got {tuple(out.shape)}"
    )
    counts = torch.bincount(support.sequence_cells(out[:, 3:], 6), minlength=36)
    support.check_counts(
        counts,
        support.generate_law(table, LAW_PROMPT, steps, **LAW_SETTINGS),
        name=f"the first two tokens of 3000 generations with {LAW_SETTINGS} (outcome = 6 * first + second)",
        hint="order: repetition penalty (prompt included) -> temperature -> top-k -> top-p -> sample",
        suspects=mistakes.on("generate_law", table, LAW_PROMPT, steps, **LAW_SETTINGS),
    )
    twice = [
        impl.generate(impl.NGramLM(table), prompts[:200], steps, generator=77, **LAW_SETTINGS) for _ in "ab"
    ]
    if not torch.equal(*twice):
        raise mistakes.failure("generator_ignored", "generate(..., generator=77) twice gave different tokens")


# --- beam search ------------------------------------------------------------------------


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 2.0])
def test_an_exhaustive_beam_finds_the_best_sequence(impl, length_penalty):
    bos, eos, max_len = 0, 2, 3
    for seed in (5, 8):
        table = support.random_table(3, seed, scale=1.5)
        lm = impl.NGramLM(table)
        got = impl.beam_search(lm, bos, eos, 27, max_len, length_penalty)  # 27 = 3 ** 3: drops nothing
        support.check_beam(
            got,
            support.best_sequence(table, bos, eos, max_len, length_penalty),
            name=f"beam_search(NGramLM(table {seed}), bos={bos}, eos={eos}, beam_width=27, "
            f"max_len={max_len}, length_penalty={length_penalty})",
            hint="score = sum of log-probs / (number of generated tokens, eos included) ** length_penalty",
            suspects=mistakes.on("beam_search", table, bos, eos, max_len, length_penalty),
        )
        assert lm.calls <= max_len, (
            f"beam_search called step_fn {lm.calls} times: at most once per step, all live beams at once"
        )


def test_a_beam_one_wide_is_greedy(impl):
    for seed in (3, 4):
        table = support.random_table(4, seed, scale=1.5)
        got = impl.beam_search(impl.NGramLM(table), 0, 3, 1, 6, 1.0)
        support.check_beam(
            got,
            support.greedy_until_eos(table, 0, 3, 6, 1.0),
            name=f"beam_search(NGramLM(table {seed}), bos=0, eos=3, beam_width=1, max_len=6)",
            hint="keep the beam_width best candidates of ALL extensions, eos ones included; "
            "a kept candidate ending in eos is finished",
        )
