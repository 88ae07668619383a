"""Public tests for exercise 6.3 (pass@k and agreement with a judge). Run: pytest exercises/section6

pass@k is compared with its definition computed in exact fractions, kappa, accuracy and the
confusion matrix with scikit-learn. Small worked examples come first, then a few random
cases (hypothesis shrinks a failure to the smallest case it finds). When a check fails it
says which known mistake your output looks like. The hidden graders draw more cases.
"""

import numpy as np
import pytest
from hypothesis import given, settings

from llmkit.testing import assert_close, assert_finite, load_support

pytestmark = pytest.mark.exercise("6.3")
support = load_support("6.3")
mistakes = support.MISCONCEPTIONS
CLOSE = dict(rtol=support.RTOL, atol=support.ATOL, check_dtype=False)

# --- pass@k -----------------------------------------------------------------------------


def test_pass_at_k_small_example(impl):
    # 10 samples, 3 correct, 2 tries: both tries fail with chance C(7, 2) / C(10, 2) = 21 / 45.
    assert_close(
        support.numbers(impl.pass_at_k(10, 3, 2)),
        np.array(1 - 21 / 45),
        name="pass_at_k(10, 3, 2)",
        hint="pass@k = 1 - C(n - c, k) / C(n, k)",
        suspects=mistakes.on("pass_at_k", 10, 3, 2),
        **CLOSE,
    )


def test_pass_at_k_edge_cases(impl):
    # n - c < k: any 2 of 5 programs with 4 correct hold a correct one. c = 0: nothing passes.
    # k = 1: pass@1 is just c / n. c = n: everything passes.
    for n, c, k in [([5, 5, 10, 7], [4, 0, 3, 7], 2), ([8, 8, 8], [0, 3, 8], 1)]:
        n, c = np.array(n), np.array(c)
        assert_close(
            support.numbers(impl.pass_at_k(n, c, k)),
            support.exact_pass_at_k(n, c, k),
            name=f"pass_at_k(n={n.tolist()}, c={c.tolist()}, k={k})",
            hint="n - c < k gives exactly 1.0, c = 0 gives 0.0, and k = 1 gives c / n",
            suspects=mistakes.on("pass_at_k", n, c, k),
            **CLOSE,
        )


@settings(max_examples=15)
@given(case=support.problems())
def test_pass_at_k_matches_exact_fractions(impl, case):
    n, c, k = case
    assert_close(
        support.numbers(impl.pass_at_k(n, c, k)),
        support.exact_pass_at_k(n, c, k),
        name=f"pass_at_k(n={n.tolist()}, c={c.tolist()}, k={k})",
        suspects=mistakes.on("pass_at_k", n, c, k),
        **CLOSE,
    )


def test_pass_at_k_for_a_thousand_samples(impl):
    # 1000 samples per problem, as in the Codex paper's pass@100 numbers: 1000! has 2568 digits.
    n = np.array([1000, 1000, 1000, 1000, 1000, 200])
    c = np.array([0, 1, 10, 500, 995, 150])
    for k in (10, 100):
        out = support.numbers(impl.pass_at_k(n, c, k))
        name = f"pass_at_k(n={n.tolist()}, c={c.tolist()}, k={k})"
        suspects = mistakes.on("pass_at_k", n, c, k)
        assert_close(out, support.exact_pass_at_k(n, c, k), name=name, suspects=suspects, **CLOSE)
        assert_finite(out, name=name)


def test_pass_at_k_rejects_k_above_n(impl):
    with pytest.raises(ValueError):
        impl.pass_at_k(np.array([10, 3]), np.array([1, 1]), 5)


# --- Cohen's kappa -------------------------------------------------------------------------

# Ten answers scored 1-5 by a human and by a judge that tends to give one point more.
HUMAN = [5, 4, 4, 3, 2, 5, 1, 3, 4, 2]
JUDGE = [5, 5, 4, 4, 3, 5, 2, 3, 5, 4]


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_small_example(impl, weights):
    for a, b in [(HUMAN, JUDGE), (JUDGE, HUMAN)]:
        assert_close(
            support.numbers(impl.cohen_kappa(a, b, weights=weights)),
            np.array(support.kappa(a, b, weights=weights)),
            name=f"cohen_kappa({a}, {b}, weights={weights!r})",
            hint="kappa = 1 - sum(w * observed) / sum(w * expected), w = 0 on the diagonal",
            suspects=mistakes.on("cohen_kappa", a, b, weights=weights),
            **CLOSE,
        )


def test_cohen_kappa_extremes(impl):
    cases = [
        ("the same labels", HUMAN, HUMAN),  # 1: perfect agreement
        ("a judge that always says 4", HUMAN, [4] * len(HUMAN)),  # 0: no better than chance
        ("opposite labels", ["yes", "no", "yes", "no"], ["no", "yes", "no", "yes"]),  # -1
    ]
    for what, a, b in cases:
        assert_close(
            support.numbers(impl.cohen_kappa(a, b)),
            np.array(support.kappa(a, b)),
            name=f"cohen_kappa with {what}",
            suspects=mistakes.on("cohen_kappa", a, b),
            **CLOSE,
        )


@settings(max_examples=15)
@given(case=support.rating_case())
def test_cohen_kappa_matches_sklearn(impl, case):
    a, b, labels, weights = support.rating_inputs(case)
    for x, y in [(a, b), (b, a)]:  # kappa is symmetric
        assert_close(
            support.numbers(impl.cohen_kappa(x, y, labels=labels, weights=weights)),
            np.array(support.kappa(x, y, labels, weights)),
            name=f"cohen_kappa({list(x)}, {list(y)}, labels={labels}, weights={weights!r})",
            hint="categories are at their positions in labels (sorted labels when None); the weights "
            "use positions, not label values",
            suspects=mistakes.on("cohen_kappa", x, y, labels=labels, weights=weights),
            **CLOSE,
        )


# --- judge vs human ------------------------------------------------------------------------


def test_judge_agreement_small_example(impl):
    report = impl.judge_agreement(JUDGE, HUMAN, weights="quadratic")
    support.check_report(report, JUDGE, HUMAN, weights="quadratic", call="judge_agreement(JUDGE, HUMAN)")


@settings(max_examples=10)
@given(case=support.rating_case())
def test_judge_agreement_matches_sklearn(impl, case):
    judge, human, labels, weights = support.rating_inputs(case)
    call = f"judge_agreement({list(judge)}, {list(human)}, labels={labels}, weights={weights!r})"
    report = impl.judge_agreement(judge, human, labels=labels, weights=weights)
    support.check_report(report, judge, human, labels, weights, call=call)
