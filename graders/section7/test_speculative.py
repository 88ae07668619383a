"""Hidden graders for exercise 7.4 (speculative decoding): 20 points.

Oracles: the residual's closed form; ``speculative_oracle.expected_step`` (the acceptance
rule, then the one torch.multinomial draw replayed with a generator in the same state);
``speculative_oracle.round_distribution``, the exact law of a round by enumeration over
every draft sequence and acceptance event, whose per-position marginals are checked to be
the target's (the speculative sampling theorem); sum_x min(p, q) for the acceptance rate;
scipy.stats.chisquare for the 50 000-round test and for generated text. Cheap exact tests
come first, the statistical ones last. Every draw is seeded (fixed seeds, or seeds drawn
from the run's seed), so a verdict replays exactly; every statistical check has a
significance of 1e-6.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import CheckFailure, Draw, assert_close, check_equal, load_oracle, load_support, unchanged

pytestmark = pytest.mark.exercise("7.4")
support = load_support("7.4")
oracle = load_oracle("7.4")
mistakes = support.MISCONCEPTIONS

STEP_HINT = support.STEP_HINT


def check_step(impl, p, q, drafts, uniforms, seed, *, name):
    """``speculative_step`` on these inputs against the oracle, inputs left unchanged."""
    expected = oracle.expected_step(p, q, drafts, uniforms, seed)
    support.check_step(impl, p, q, drafts, uniforms, expected, seed, name=name)


# --- the residual (2 points) ------------------------------------------------------------


@pytest.mark.points(2)
@settings(max_examples=30)
@given(case=support.rows_case(), batched=st.booleans())
def test_residual_matches_closed_form(impl, case, batched):
    p, q = support.draw_rows(case)
    rows_p, rows_q = torch.cat([p[:-1], p[:1]]), torch.cat([q, p[:1]])  # the last row: q == p
    if batched:  # leading dimensions: (2, rows, V)
        rows_p, rows_q = torch.stack([rows_p, rows_p.flip(0)]), torch.stack([rows_q, rows_q.flip(0)])
    with unchanged(rows_p, rows_q, names=["p", "q"]):
        out = impl.residual_distribution(rows_p, rows_q)
    assert_close(
        out,
        support.residual(rows_p, rows_q),
        name=f"residual_distribution(p, q) of shape {tuple(rows_p.shape)} (rows with q == p included)",
        hint="max(0, p - q) divided by its sum along the last axis; p's row where that sum is 0",
        suspects=mistakes.on("residual_distribution", rows_p, rows_q),
    )


# --- one step, exact (8 points) ---------------------------------------------------------


@pytest.mark.points(1)
@settings(max_examples=15)
@given(case=support.rows_case(), seed=st.integers(0, 2**20))
def test_step_accepts_everything_when_q_equals_p(impl, case, seed):
    p, _ = support.draw_rows(case)
    q = p[:-1].clone()
    rng = Draw(seed)
    drafts = torch.multinomial(q, 1, generator=rng.generator).flatten()
    uniforms = torch.rand(q.shape[0], generator=rng.generator, dtype=p.dtype)
    uniforms[0] = 1.0
    check_step(impl, p, q, drafts, uniforms, seed, name="speculative_step with q == p (every draft accepted)")


@pytest.mark.points(3)
@settings(max_examples=40)
@given(case=support.rows_case(), keep=st.integers(0, 3), seed=st.integers(0, 2**20))
def test_step_on_planned_cases(impl, case, keep, seed):
    p, q = support.draw_rows(case)
    drafts, uniforms, k = support.planned_step(p, q, seed, keep)
    check_step(
        impl, p, q, drafts, uniforms, seed, name=f"speculative_step planned to accept {k} of {q.shape[0]}"
    )


EDGE_CASES = [
    # (p rows, q rows, draft tokens, uniforms, dtype, what it shows)
    ([[0.25, 0.75], [0.5, 0.5]], [[0.5, 0.5]], [0], [0.5], torch.float32, "u == p/q exactly: accepted"),
    ([[0.25, 0.75], [0.5, 0.5]], [[0.5, 0.5]], [0], [0.50001], torch.float32, "u just above p/q: rejected"),
    (
        [[0.5, 0.5, 0.0], [0.3, 0.7, 0.0], [0.1, 0.2, 0.7]],
        [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]],
        [1, 0],
        [1.0, 1.0],
        torch.float64,
        "q(x) = 0 < p(x) at the second draft: accepted even with u = 1",
    ),
    (
        [[0.5, 0.5], [0.0, 1.0], [0.5, 0.5]],
        [[0.5, 0.5], [0.5, 0.5]],
        [0, 0],
        [0.0, 0.0],
        torch.float64,
        "p(x) = 0 at the second draft: rejected even with u = 0",
    ),
    (
        [[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]],
        [[0.0, 0.5, 0.5]],
        [0],
        [0.5],
        torch.float64,
        "p == q and the draft has probability 0 in both: rejected, the residual is empty, so draw from p",
    ),
    (
        [[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4], [0.25, 0.25, 0.5]],
        [[0.1, 0.6, 0.3], [0.4, 0.1, 0.5], [0.3, 0.3, 0.4]],
        [2, 0, 1],
        [0.0, 1.0, 0.0],
        torch.float64,
        "a rejection in the middle: the third draft (u = 0) is dropped",
    ),
]


@pytest.mark.points(2)
def test_step_edge_cases(impl):
    for index, (p_rows, q_rows, drafts, uniforms, dtype, what) in enumerate(EDGE_CASES):
        p, q = torch.tensor(p_rows, dtype=dtype), torch.tensor(q_rows, dtype=dtype)
        drafts, uniforms = torch.tensor(drafts), torch.tensor(uniforms, dtype=dtype)
        check_step(impl, p, q, drafts, uniforms, 100 + index, name=f"speculative_step: {what}")


@pytest.mark.points(2)
@settings(max_examples=40)
@given(case=support.rows_case(max_vocab=6, max_gamma=5), from_q=st.booleans(), seed=st.integers(0, 2**20))
def test_step_matches_oracle_on_random_inputs(impl, case, from_q, seed):
    p, q = support.draw_rows(case)
    rng = Draw(seed)
    gamma, vocab = q.shape
    if from_q:  # drafts as a draft model would make them
        drafts = torch.multinomial(q, 1, generator=rng.generator).flatten()
    else:  # any token, q(x) = 0 and p(x) = 0 included
        drafts = torch.randint(0, vocab, (gamma,), generator=rng.generator)
    uniforms = torch.rand(gamma, generator=rng.generator, dtype=p.dtype)
    check_step(impl, p, q, drafts, uniforms, seed, name="speculative_step on random inputs")


# --- rounds and generation, structure (3 points) ------------------------------------------


@pytest.mark.points(1)
def test_rounds_with_q_equal_to_p_emit_gamma_plus_one(impl, draw):
    p = torch.softmax(draw.tensor(4, 5, dtype=torch.float64), -1)
    q = p[:-1].clone()
    rounds = impl.speculative_rounds(p, q, 300, torch.Generator().manual_seed(5))
    problem = support.rounds_structure_problem(rounds, 300, 3, 5)
    if problem:
        raise CheckFailure(f"speculative_rounds(p, q, 300): {problem}")
    short = int((support.round_lengths(rounds) != 4).sum())
    if short:
        raise CheckFailure(
            f"speculative_rounds with q == p: {short} of 300 rounds emitted fewer than gamma + 1 = 4 tokens; "
            "with q == p every draft is accepted (p/q = 1), then the bonus token comes",
            hint=STEP_HINT,
        )
    support.check_rounds(rounds, p, q, 300, name="speculative_rounds with q == p")


@pytest.mark.points(2)
def test_generate_lengths_and_a_deterministic_target(impl):
    target, draft = support.random_bigram(4, seed=3), support.random_bigram(4, seed=4)
    prompt = torch.tensor([1, 2, 3])
    for max_new, gamma in [(0, 3), (1, 1), (2, 5), (9, 1), (10, 4), (13, 3)]:
        with unchanged(prompt, names=["prompt"]):
            out = impl.speculative_generate(
                target, draft, prompt, max_new, gamma, torch.Generator().manual_seed(max_new)
            )
        support.check_generated_length(
            out, max_new, name=f"speculative_generate(max_new_tokens={max_new}, gamma={gamma})"
        )
    for vocab, prompt_list, gamma, dtype in [(5, [4], 2, torch.float64), (7, [0, 6, 2], 4, torch.float32)]:
        chain = support.chain_model(vocab, dtype)
        draft = support.random_bigram(vocab, seed=vocab, dtype=dtype)
        out = impl.speculative_generate(chain, draft, torch.tensor(prompt_list), 15, gamma, torch.Generator())
        support.check_generated_length(
            out, 15, name=f"speculative_generate(max_new_tokens=15, gamma={gamma})"
        )
        check_equal(
            out.tolist(),
            [(prompt_list[-1] + 1 + t) % vocab for t in range(15)],
            name=f"speculative_generate, target t -> t + 1 (mod {vocab}) with probability 1, "
            f"prompt {prompt_list}",
            hint="row start - 1 + i of the target's output judges draft i; a draft the target gives "
            "probability 0 is never accepted",
        )


# --- statistics (7 points) ------------------------------------------------------------------


@pytest.mark.points(2)
@settings(max_examples=3)
@given(case=support.rows_case(max_vocab=4, max_gamma=3), seed=st.integers(0, 2**20))
def test_rounds_acceptance_rates_and_positions(impl, case, seed):
    p, q = support.draw_rows(case)
    n = 2000
    rounds = impl.speculative_rounds(p, q, n, torch.Generator().manual_seed(seed))
    support.check_rounds(
        rounds,
        p,
        q,
        n,
        name=f"speculative_rounds(p, q, {n}) with V={q.shape[1]}, gamma={q.shape[0]}",
        hint="draft i must survive with probability sum_x min(p_i(x), q_i(x)), and the j-th token of a round "
        "must follow p_j",
    )


def _scipy_row_problem(counts: torch.Tensor, expected_probs: torch.Tensor) -> str | None:
    """scipy.stats.chisquare of ``counts`` against ``expected_probs`` (cells expected fewer than 5
    times merged into the largest), or why a count is impossible."""
    from scipy import stats

    counts = counts.to(torch.float64)
    probs = expected_probs.to(torch.float64)
    probs = probs / probs.sum()
    if ((probs <= 1e-12) & (counts > 0)).any():
        return "an outcome with probability 0 occurred"
    expected = counts.sum() * probs
    big = expected >= 5
    if int(big.sum()) <= 1:
        return None
    obs, exp = counts[big].clone(), expected[big].clone()
    largest = int(exp.argmax())
    obs[largest] += counts[~big].sum()
    exp[largest] += expected[~big].sum()
    pvalue = stats.chisquare(obs.numpy(), exp.numpy()).pvalue
    return None if pvalue >= support.ALPHA else f"chi-square p-value {pvalue:.2g} < {support.ALPHA:g}"


@pytest.mark.points(2)
def test_generated_text_follows_the_target(impl):
    vocab, n_new = 3, 2000
    target = support.random_bigram(vocab, seed=31, scale=2.0, dtype=torch.float64)
    draft = support.random_bigram(vocab, seed=32, scale=2.0, dtype=torch.float64)
    out = impl.speculative_generate(
        target, draft, torch.tensor([2]), n_new, 2, torch.Generator().manual_seed(9)
    )
    support.check_generated_length(out, n_new, name=f"speculative_generate(max_new_tokens={n_new}, gamma=2)")
    counts = support.transition_counts(2, out, vocab)
    rows = support.model_rows(target, vocab)
    for t in range(vocab):
        problem = _scipy_row_problem(counts[t], rows[t])
        if problem:
            m = int(counts[t].sum())
            raise CheckFailure(
                f"generated text: after token {t} ({m} times) the next token had frequencies "
                f"{[round(float(c) / m, 3) for c in counts[t]]}, the target's row is "
                f"{[round(float(r), 3) for r in rows[t]]}: {problem}",
                hint="drafts drawn from the draft's rows with torch.multinomial, each judged by the target "
                "row of its own position",
            )


EXACT_CASE = (3, 2, torch.float64, False, 2024)  # (V, gamma, dtype, sparse, seed)
EXACT_ROUNDS = 50_000


@pytest.mark.points(3)
def test_rounds_match_the_exact_law(impl):
    p, q = support.draw_rows(EXACT_CASE)
    law = oracle.round_distribution(p, q)  # by enumeration over drafts and acceptance events
    oracle.assert_theorem(law, p)  # the oracle itself: every position's token follows p
    rounds = impl.speculative_rounds(p, q, EXACT_ROUNDS, torch.Generator().manual_seed(2024))
    name = f"speculative_rounds(p, q, {EXACT_ROUNDS}) with V=3, gamma=2"
    support.check_rounds(rounds, p, q, EXACT_ROUNDS, name=name)  # names a known mistake if it is one
    outcomes = sorted(law)
    index = {tokens: i for i, tokens in enumerate(outcomes)}
    counts = torch.zeros(len(outcomes), dtype=torch.float64)
    lengths = support.round_lengths(rounds).tolist()
    for row, length in zip(rounds.tolist(), lengths):
        tokens = tuple(row[:length])
        if tokens not in index:
            raise CheckFailure(f"{name}: a round emitted {list(tokens)}, which has probability 0")
        counts[index[tokens]] += 1
    problem = _scipy_row_problem(counts, torch.tensor([law[t] for t in outcomes], dtype=torch.float64))
    if problem:
        worst = int(((counts / EXACT_ROUNDS - torch.tensor([law[t] for t in outcomes])).abs()).argmax())
        raise CheckFailure(
            f"{name}: the joint law of the rounds' outputs differs from the exact one ({problem}); e.g. "
            f"{list(outcomes[worst])} came out {int(counts[worst])} times, expected "
            f"{law[outcomes[worst]] * EXACT_ROUNDS:.0f}",
            hint="the tokens of one round must not depend on each other beyond the rule: a residual drawn "
            "from the rejected position's rows, a bonus from p[gamma]",
        )
