"""Public tests for exercise 7.4 (speculative decoding). Run: pytest exercises/section7

The residual against its closed form; speculative_step on planned cases (uniforms built so
that a known number of drafts survive) whose last token is replayed with a generator in the
same state; the edge cases of the rule (u exactly at p/q, q(x) = 0, p(x) = 0); then the law
of many rounds (binomial tests of the acceptance rates against sum_x min(p, q), chi-square
tests of each position's token against the target's row, scipy) and generation on toy
bigram models. The statistical tests use fixed seeds and a significance of 1e-6. When a
check fails it says which known mistake your output looks like.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import CheckFailure, assert_close, check_equal, load_support, unchanged

pytestmark = pytest.mark.exercise("7.4")
support = load_support("7.4")
mistakes = support.MISCONCEPTIONS


@settings(max_examples=10)
@given(case=support.rows_case())
def test_residual_matches_closed_form(impl, case):
    p, q = support.draw_rows(case)
    rows_p, rows_q = torch.cat([p[:-1], p[:1]]), torch.cat([q, p[:1]])  # the last row: q == p
    assert_close(
        impl.residual_distribution(rows_p, rows_q),
        support.residual(rows_p, rows_q),
        name=f"residual_distribution(p, q) of {rows_p.shape[0]} rows (the last with q == p)",
        hint="max(0, p - q) divided by its sum along the last axis; p's row where that sum is 0",
        suspects=mistakes.on("residual_distribution", rows_p, rows_q),
    )


def _expected(p, q, drafts, k, seed):
    gamma = q.shape[0]
    row = support.residual(p[k], q[k]) if k < gamma else p[gamma]
    return drafts[:k].tolist() + [
        int(torch.multinomial(row, 1, generator=torch.Generator().manual_seed(seed)))
    ]


@settings(max_examples=15)
@given(case=support.rows_case(), keep=st.integers(0, 3), seed=st.integers(0, 2**20))
def test_step_on_planned_cases(impl, case, keep, seed):
    p, q = support.draw_rows(case)
    drafts, uniforms, k = support.planned_step(p, q, seed, keep)
    support.check_step(
        impl,
        p,
        q,
        drafts,
        uniforms,
        _expected(p, q, drafts, k, seed),
        seed,
        name=f"speculative_step, planned so that {k} of {q.shape[0]} drafts are accepted",
    )


def test_step_accepts_everything_when_q_equals_p(impl, draw):
    p = torch.softmax(draw.tensor(4, 5, dtype=torch.float64), -1)
    q = p[:-1].clone()
    drafts = torch.multinomial(q, 1, generator=draw.generator).flatten()
    uniforms = torch.tensor([1.0, 0.5, 0.999], dtype=torch.float64)
    support.check_step(
        impl,
        p,
        q,
        drafts,
        uniforms,
        _expected(p, q, drafts, 3, draw.seed),
        draw.seed,
        name="speculative_step with q == p (every draft accepted, then the bonus from p[3])",
    )


EDGE_CASES = [
    # (p rows, q rows, drafts, uniforms, accepted, what it shows)
    ([[0.25, 0.75], [0.5, 0.5]], [[0.5, 0.5]], [0], [0.5], 1, "u == p/q exactly is accepted (u <= p/q)"),
    ([[0.25, 0.75], [0.5, 0.5]], [[0.5, 0.5]], [0], [0.5000001], 0, "u just above p/q is rejected"),
    ([[0.3, 0.7], [0.5, 0.5]], [[0.0, 1.0]], [0], [1.0], 1, "q(x) = 0 < p(x): always accepted"),
    ([[0.0, 1.0], [0.5, 0.5]], [[0.5, 0.5]], [0], [0.0], 0, "p(x) = 0: never accepted, even with u = 0"),
    (
        [[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]],
        [[0.0, 0.5, 0.5]],
        [0],
        [0.5],
        0,
        "p == q and a rejected token both give 0: the residual is empty, so draw from p",
    ),
]


@pytest.mark.parametrize("p_rows, q_rows, drafts, uniforms, k, what", EDGE_CASES)
def test_step_edge_cases(impl, p_rows, q_rows, drafts, uniforms, k, what):
    p, q = torch.tensor(p_rows, dtype=torch.float64), torch.tensor(q_rows, dtype=torch.float64)
    drafts, uniforms = torch.tensor(drafts), torch.tensor(uniforms, dtype=torch.float64)
    support.check_step(
        impl, p, q, drafts, uniforms, _expected(p, q, drafts, k, 8), 8, name=f"speculative_step: {what}"
    )


# Fixed cases, so the statistics are the same on every run: (V, gamma, dtype, sparse, seed).
ROUNDS_CASES = [(4, 3, torch.float32, False, 11), (3, 2, torch.float64, True, 5)]
ROUNDS = 1500


@pytest.mark.parametrize("case", ROUNDS_CASES, ids=["V4-gamma3", "V3-gamma2-sparse"])
def test_rounds_follow_the_target(impl, case):
    p, q = support.draw_rows(case)
    rounds = impl.speculative_rounds(p, q, ROUNDS, torch.Generator().manual_seed(case[-1]))
    support.check_rounds(
        rounds,
        p,
        q,
        ROUNDS,
        name=f"speculative_rounds(p, q, {ROUNDS}) with V={case[0]}, gamma={case[1]}",
        hint="each round: drafts drawn from q's rows, uniforms from torch.rand, then speculative_step",
    )


def test_rounds_accept_everything_when_q_equals_p(impl, draw):
    p = torch.softmax(draw.tensor(3, 4, dtype=torch.float64), -1)
    rounds = impl.speculative_rounds(p, p[:-1].clone(), 200, torch.Generator().manual_seed(3))
    support.check_rounds(rounds, p, p[:-1].clone(), 200, name="speculative_rounds with q == p")
    lengths = support.round_lengths(rounds)
    if (lengths != 3).any():
        raise CheckFailure(
            f"speculative_rounds with q == p: {int((lengths != 3).sum())} of 200 rounds emitted fewer than "
            "gamma + 1 = 3 tokens; with q == p every draft is accepted, then the bonus token comes"
        )


GENERATE_LENGTHS = [(0, 2), (1, 3), (5, 2), (7, 3), (4, 6)]  # (max_new_tokens, gamma)


def test_generate_returns_exactly_max_new_tokens(impl):
    target, draft = support.random_bigram(4, seed=1), support.random_bigram(4, seed=2)
    prompt = torch.tensor([2, 0, 3])
    for max_new, gamma in GENERATE_LENGTHS:
        with unchanged(prompt, names=["prompt"]):
            out = impl.speculative_generate(
                target, draft, prompt, max_new, gamma, torch.Generator().manual_seed(max_new)
            )
        support.check_generated_length(
            out, max_new, name=f"speculative_generate(max_new_tokens={max_new}, gamma={gamma})"
        )


def test_generate_with_a_deterministic_target(impl):
    vocab = 5
    target, draft = support.chain_model(vocab), support.random_bigram(vocab, seed=4)
    prompt = torch.tensor([1, 3])
    out = impl.speculative_generate(target, draft, prompt, 12, 3, torch.Generator().manual_seed(0))
    support.check_generated_length(out, 12, name="speculative_generate(max_new_tokens=12, gamma=3)")
    check_equal(
        out.tolist(),
        [(3 + 1 + t) % vocab for t in range(12)],
        name="speculative_generate with a target that always continues t -> t + 1 (mod 5), prompt [1, 3]",
        hint="the target's row at position start - 1 + i judges draft i, the last of the gamma + 1 rows "
        "gives the bonus; a draft the target gives probability 0 is never accepted",
    )


def test_generate_follows_the_target(impl):
    vocab, n_new = 3, 600
    target, draft = (
        support.random_bigram(vocab, seed=21, scale=2.0),
        support.random_bigram(vocab, seed=22, scale=2.0),
    )
    prompt = torch.tensor([0])
    out = impl.speculative_generate(target, draft, prompt, n_new, 3, torch.Generator().manual_seed(1))
    support.check_generated_length(out, n_new, name=f"speculative_generate(max_new_tokens={n_new}, gamma=3)")
    counts = support.transition_counts(0, out, vocab)
    support.check_transitions(counts, support.model_rows(target, vocab), name="generated text")
