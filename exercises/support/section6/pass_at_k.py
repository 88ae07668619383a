"""Support for exercise 6.3 (pass@k and agreement with a judge): what its public tests, graders,
notebook and `llmkit show` share. It ships to learners: nothing here is the reference solution.

* Oracles: pass@k from its definition in exact integer arithmetic (``math.comb`` and
  ``fractions.Fraction``: slow, but never rounded), Cohen's kappa, accuracy and the confusion
  matrix from scikit-learn.
* The inputs the tests draw: (n, c, k) problems and pairs of raters.
* ``MISCONCEPTIONS``: what each known mistake returns, built from closed forms and
  scikit-learn (kappa's mistakes use the "every item against every item" form of kappa, not
  the confusion-matrix form the exercise asks for).
* ``figure(impl)``: the learner's pass@k curves and judge-vs-human confusion matrix.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import SEEDS, CheckFailure, Misconception, Misconceptions, assert_close

# pass@k and kappa are float64 results: compare them closely (products of many factors round
# a little, so not exactly).
RTOL, ATOL = 1e-9, 1e-10

# --- oracles ----------------------------------------------------------------------


def exact_pass_at_k(n, c, k: int) -> np.ndarray:
    """1 - C(n - c, k) / C(n, k) per problem, as an exact fraction rounded once to float64.

    ``n`` and ``c`` are ints or integer arrays (they broadcast); the result has their
    broadcast shape (``()`` for two ints)."""
    n_arr, c_arr = np.broadcast_arrays(np.asarray(n), np.asarray(c))
    values = [
        float(1 - Fraction(math.comb(int(ni) - int(ci), k), math.comb(int(ni), k)))
        for ni, ci in zip(n_arr.ravel(), c_arr.ravel())
    ]
    return np.array(values, dtype=np.float64).reshape(n_arr.shape)


def kappa(a, b, labels=None, weights=None) -> float:
    """scikit-learn's Cohen's kappa (labels=None: the sorted union of a's and b's labels)."""
    return float(cohen_kappa_score(list(a), list(b), labels=labels, weights=weights))


def labels_of(a, b, labels=None) -> list:
    """The category order: ``labels`` as given, else the sorted union of the labels used."""
    return list(labels) if labels is not None else sorted(set(a) | set(b))


def agreement_report(judge_scores, human_scores, labels=None, weights=None) -> dict:
    """What ``judge_agreement`` returns, from scikit-learn: the human is the reference
    (``y_true``, the rows of the confusion matrix), the judge the prediction (the columns)."""
    judge, human = list(judge_scores), list(human_scores)
    order = labels_of(human, judge, labels)
    return {
        "accuracy": float(accuracy_score(human, judge)),
        "kappa": kappa(human, judge, order, weights),
        "confusion_matrix": confusion_matrix(human, judge, labels=order),
        "labels": order,
    }


# --- reading the learner's results -------------------------------------------------


def numbers(value):
    """A learner's number(s) as something the checks compare: a Python float, a numpy
    scalar, a 0-d or 1-D array, a list of floats or a tensor."""
    if isinstance(value, (int, float, np.generic, list, tuple)):  # Python floats in float64, not 32
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            pass
    return value


def entry(report, key: str, call: str):
    """``report[key]`` of a learner's ``judge_agreement`` result, or a failure saying what is missing."""
    if not isinstance(report, dict):
        raise CheckFailure(
            f"{call} should return a dict, got {type(report).__name__}",
            hint='return {"accuracy": ..., "kappa": ..., "confusion_matrix": ..., "labels": ...}',
        )
    if key not in report:
        raise CheckFailure(
            f"{call} returned no {key!r} entry (its keys: {', '.join(map(repr, report))})",
            hint='the keys are "accuracy", "kappa", "confusion_matrix" and "labels"',
        )
    return report[key]


def check_report(report, judge, human, labels=None, weights=None, *, call: str) -> None:
    """Every entry of a learner's ``judge_agreement`` result against scikit-learn's."""
    want = agreement_report(judge, human, labels, weights)
    got_labels = entry(report, "labels", call)
    try:
        same = list(got_labels) == want["labels"]
    except TypeError:
        same = False
    if not same:
        raise CheckFailure(
            f"{call}['labels']:\n  got      {got_labels!r}\n  expected {want['labels']!r}",
            hint="labels=None means the sorted union of the labels either rater used",
        )
    args = (judge, human)
    kwargs = {"labels": labels, "weights": weights}
    assert_close(
        numbers(entry(report, "confusion_matrix", call)),
        want["confusion_matrix"],
        name=f"{call}['confusion_matrix']",
        rtol=0,
        atol=0,
        check_dtype=False,
        hint="entry [i, j] counts the items the HUMAN labelled labels[i] and the JUDGE labelled labels[j]",
        suspects=MISCONCEPTIONS.on("judge_agreement[confusion_matrix]", *args, **kwargs),
    )
    assert_close(
        numbers(entry(report, "accuracy", call)),
        np.array(want["accuracy"]),
        name=f"{call}['accuracy']",
        rtol=RTOL,
        atol=ATOL,
        check_dtype=False,
        hint="accuracy is the fraction of items on which the judge and the human give the same label",
    )
    assert_close(
        numbers(entry(report, "kappa", call)),
        np.array(want["kappa"]),
        name=f"{call}['kappa']",
        rtol=RTOL,
        atol=ATOL,
        check_dtype=False,
        hint="kappa is cohen_kappa(human_scores, judge_scores, labels, weights)",
        suspects=MISCONCEPTIONS.on("judge_agreement[kappa]", *args, **kwargs),
    )


# --- inputs the public tests and graders draw -------------------------------------------


@st.composite
def problems(draw_st, max_n: int = 60, max_problems: int = 6):
    """``(n, c, k)`` for a few problems: n and c integer arrays (0 <= c <= n), 1 <= k <= min(n)."""
    count = draw_st(st.integers(1, max_problems))
    n = draw_st(st.lists(st.integers(1, max_n), min_size=count, max_size=count))
    c = [draw_st(st.integers(0, ni), label="c") for ni in n]
    k = draw_st(st.integers(1, min(n)), label="k")
    return np.array(n, dtype=np.int64), np.array(c, dtype=np.int64), k


# Ordinal labels a judge might give, in their order (not alphabetical).
GRADES = ["awful", "poor", "fair", "good", "great", "perfect"]


@st.composite
def rating_case(draw_st, max_items: int = 40):
    """How to draw two raters' labels: the number of labels and items, int or str labels,
    whether ``labels`` is passed, the weights, how often b copies a, and a value seed."""
    return dict(
        n_labels=draw_st(st.integers(2, 6)),
        n_items=draw_st(st.integers(2, max_items)),
        kind=draw_st(st.sampled_from(["int", "int array", "str"])),
        pass_labels=draw_st(st.booleans()),
        weights=draw_st(st.sampled_from([None, "linear", "quadratic"])),
        agreement=draw_st(st.sampled_from([0.0, 0.5, 0.8])),
        seed=draw_st(SEEDS),
    )


def rating_inputs(case: dict):
    """``(a, b, labels, weights)`` for a :func:`rating_case`. Integer labels have gaps
    (e.g. 0, 3, 4, 8), string labels are ``GRADES`` in their ordinal order; rater a uses
    at least two labels, so kappa is always defined."""
    rng = np.random.default_rng(case["seed"])
    k, n = case["n_labels"], case["n_items"]
    if case["kind"] == "str":
        universe = GRADES[:k]
    else:
        universe = sorted(int(v) for v in rng.choice(10, size=k, replace=False))
    a_pos = rng.integers(0, k, size=n)
    a_pos[0], a_pos[1] = 0, k - 1
    copies = rng.random(n) < case["agreement"]
    b_pos = np.where(copies, a_pos, rng.integers(0, k, size=n))
    a, b = [universe[p] for p in a_pos], [universe[p] for p in b_pos]
    if case["kind"] == "int array":
        a, b = np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)
    labels = list(universe) if case["pass_labels"] else None
    return a, b, labels, case["weights"]


def judge_and_human(seed: int, n_items: int = 60) -> tuple[list[int], list[int]]:
    """Ratings 1-5 of ``n_items`` answers: a human's, and a lenient LLM judge's (it often
    gives one point more, sometimes one point off either way)."""
    rng = np.random.default_rng(seed)
    human = rng.choice([1, 2, 3, 4, 5], size=n_items, p=[0.1, 0.2, 0.3, 0.25, 0.15])
    lenient = rng.random(n_items) < 0.35
    noise = np.where(rng.random(n_items) < 0.15, rng.choice([-1, 1], size=n_items), 0)
    judge = np.clip(human + lenient + noise, 1, 5)
    return [int(v) for v in judge], [int(v) for v in human]


# --- misconceptions: what each known mistake returns -----------------------------------


def _biased_pass_at_k(n, c, k):
    """The plug-in estimate: the chance that k independent draws with success rate c/n all fail."""
    n_arr, c_arr = np.asarray(n, dtype=np.float64), np.asarray(c, dtype=np.float64)
    return np.asarray(1.0 - (1.0 - c_arr / n_arr) ** k)  # an array even for two ints


def _float_factorial_pass_at_k(n, c, k):
    """1 - C(n - c, k) / C(n, k) with every binomial m! / (k! (m - k)!) in float64:
    171! and above are inf, and inf / inf is NaN."""
    n_arr, c_arr = np.broadcast_arrays(np.asarray(n), np.asarray(c))
    with np.errstate(over="ignore", invalid="ignore"):
        factorial = np.cumprod(np.concatenate([[1.0], np.arange(1.0, n_arr.max() + 1.0)]))
        fails = n_arr - c_arr
        top = np.maximum(fails, k)
        comb_fails = factorial[top] / (factorial[k] * factorial[top - k])
        comb_all = factorial[n_arr] / (factorial[k] * factorial[n_arr - k])
        return np.where(fails < k, 1.0, 1.0 - comb_fails / comb_all)


def _positions(a, b, labels):
    """a's and b's labels as positions 0..K-1 in the category order, and K."""
    order = labels_of(list(a), list(b), labels)
    index = {label: i for i, label in enumerate(order)}
    return np.array([index[x] for x in a]), np.array([index[y] for y in b]), len(order)


def _pairwise_kappa(observed_pairs, chance_pairs, weight) -> np.ndarray:
    """1 - (mean weight of the pairs the raters gave) / (mean weight of the chance pairs).
    With chance pairs = every item of a against every item of b, this is Cohen's kappa."""
    (x, y), (u, v) = observed_pairs, chance_pairs
    return np.array(1.0 - weight(x, y).mean() / weight(u[:, None], v[None, :]).mean())


def _kappa_chance_from_a(a, b, labels=None, weights=None):
    """Kappa whose chance agreement pairs a with itself: sum_i p_a(i)^2, not sum_i p_a(i) p_b(i)."""
    x, y, _ = _positions(a, b, labels)
    power = {None: 0, "linear": 1, "quadratic": 2}[weights]
    weight = (lambda p, q: (p != q) * 1.0) if power == 0 else (lambda p, q: np.abs(p - q) ** power * 1.0)
    return _pairwise_kappa((x, y), (x, x), weight)


def _kappa_quadratic_as_linear(a, b, labels=None, weights=None):
    """Quadratic kappa computed with the linear weights |i - j|: scikit-learn's linear kappa."""
    if weights != "quadratic":
        raise ValueError("only the quadratic weights carry this mistake")
    return np.array(kappa(a, b, labels, "linear"))  # float64: a Python float would be compared in float32


def _kappa_with_agreement_weights(a, b, labels=None, weights=None):
    """Linear kappa with the agreement weights 1 - |i - j| / (K - 1) where the formula
    1 - sum(w * observed) / sum(w * expected) wants disagreement weights |i - j|."""
    if weights != "linear":
        raise ValueError("only the linear weights carry this mistake")
    x, y, k = _positions(a, b, labels)
    return _pairwise_kappa((x, y), (x, y), lambda p, q: 1.0 - np.abs(p - q) / (k - 1))


def _in_judge_agreement(kappa_variant):
    """A kappa mistake as judge_agreement's "kappa" shows it: the human is rater a."""
    return lambda judge, human, labels=None, weights=None: kappa_variant(human, judge, labels, weights)


MISCONCEPTIONS = Misconceptions(
    "exercises/section6/README.md",
    Misconception(
        "biased_estimator",
        "pass@k as 1 - (1 - c/n)**k",
        "that estimate is biased low (and never reaches 1 when n - c < k): draw k of the n samples "
        "WITHOUT replacement, pass@k = 1 - C(n-c, k) / C(n, k)",
        readme="6.3 — The unbiased estimator",
        variants={"pass_at_k": _biased_pass_at_k},
    ),
    Misconception(
        "float_factorial_overflow",
        "binomials from float factorials",
        "171! overflows float64 to inf and inf / inf is NaN: cancel the factorials, "
        "C(n-c, k) / C(n, k) is a product of n-c+1..n terms (1 - k/i)",
        readme="6.3 — Big n without overflow",
        variants={"pass_at_k": _float_factorial_pass_at_k},
    ),
    Misconception(
        "one_rater_marginals",
        "chance agreement from one rater's label frequencies",
        "chance agreement multiplies the two raters' frequencies: p_e = sum_i p_a(i) * p_b(i), "
        "expected[i, j] = row_total[i] * column_total[j] / N",
        readme="6.3 — Chance agreement needs both raters",
        variants={
            "cohen_kappa": _kappa_chance_from_a,
            "judge_agreement[kappa]": _in_judge_agreement(_kappa_chance_from_a),
        },
    ),
    Misconception(
        "linear_agreement_weights",
        "linear weights 1 - |i-j|/(K-1)",
        "those are AGREEMENT weights; kappa = 1 - sum(w * observed) / sum(w * expected) takes "
        "DISAGREEMENT weights: w = |i - j| (linear), (i - j)**2 (quadratic), 0 on the diagonal",
        readme="6.3 — Weighted kappa",
        variants={
            "cohen_kappa": _kappa_with_agreement_weights,
            "judge_agreement[kappa]": _in_judge_agreement(_kappa_with_agreement_weights),
        },
    ),
    Misconception(
        "quadratic_as_linear",
        "quadratic weights computed as |i - j|",
        "quadratic weights are the squared distance (i - j)**2, so a 2-point miss costs 4 times a "
        "1-point miss, not twice",
        readme="6.3 — Weighted kappa",
        variants={
            "cohen_kappa": _kappa_quadratic_as_linear,
            "judge_agreement[kappa]": _in_judge_agreement(_kappa_quadratic_as_linear),
        },
    ),
    Misconception(
        "confusion_transposed",
        "confusion matrix with the judge on the rows",
        "the human is the reference: entry [i, j] counts items the HUMAN labelled labels[i] and the "
        "JUDGE labelled labels[j] (scikit-learn's confusion_matrix(y_true, y_pred))",
        readme="6.3 — Rows are the human, columns the judge",
        variants={
            "judge_agreement[confusion_matrix]": lambda judge, human, labels=None, weights=None: (
                confusion_matrix(list(judge), list(human), labels=labels_of(list(human), list(judge), labels))
            )
        },
    ),
)


def check_one_call(impl, draw) -> None:
    """One small call of each function, checked against the oracles: the generated ban
    test (``test_no_library_shortcuts``) makes it after its static scan, with the banned
    scikit-learn calls trapped, so code that does nothing earns nothing there."""
    n, c = np.array([10, 20, 5]), np.array([3, 0, 5])
    assert_close(
        numbers(impl.pass_at_k(n, c, 2)), exact_pass_at_k(n, c, 2), name="pass_at_k", check_dtype=False
    )
    judge, human = judge_and_human(int(draw.integers(0, 2**31)), n_items=30)
    assert_close(
        numbers(impl.cohen_kappa(human, judge, weights="quadratic")),
        np.array(kappa(human, judge, weights="quadratic")),
        name="cohen_kappa",
        rtol=RTOL,
        atol=ATOL,
        check_dtype=False,
    )
    check_report(impl.judge_agreement(judge, human), judge, human, call="judge_agreement")


def figure(impl) -> Figure:
    """Left: ``impl.pass_at_k`` against k for a problem with n = 200 samples and several
    numbers of correct ones, beside the biased 1 - (1 - c/n)^k. Right: the confusion matrix
    and kappa that ``impl.judge_agreement`` gives a lenient judge against a human, 1-5 scores."""
    n, ks = 200, np.unique(np.geomspace(1, 200, 40).astype(int))
    fig, (left, right) = new_figure(10.0, 3.8, ncols=2)
    for c, color in zip((2, 10, 50), ("tab:blue", "tab:orange", "tab:green")):
        values = [float(np.asarray(impl.pass_at_k(n, c, int(k)), dtype=np.float64)) for k in ks]
        left.plot(ks, values, color=color, label=f"c = {c} of n = {n}")
        left.plot(ks, _biased_pass_at_k(n, c, ks), color=color, linestyle=":", linewidth=1)
    left.set_xscale("log")
    left.set_xlabel("k (samples the model may try)")
    left.set_ylabel("pass@k")
    left.set_title("your pass_at_k (dotted: biased 1 - (1 - c/n)^k)", fontsize=10)
    left.legend(fontsize=8, loc="lower right")

    judge, human = judge_and_human(seed=0, n_items=200)
    report = impl.judge_agreement(judge, human, weights="quadratic")
    matrix = np.asarray(report["confusion_matrix"], dtype=np.float64)
    labels = list(report["labels"])
    image = right.imshow(matrix, cmap="Blues")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            right.text(j, i, f"{matrix[i, j]:.0f}", ha="center", va="center", fontsize=8)
    right.set_xticks(range(len(labels)), [str(label) for label in labels])
    right.set_yticks(range(len(labels)), [str(label) for label in labels])
    right.set_xlabel("judge's score")
    right.set_ylabel("human's score")
    plain = float(np.asarray(impl.cohen_kappa(human, judge), dtype=np.float64))
    right.set_title(
        f"your judge_agreement: accuracy {float(report['accuracy']):.2f},\n"
        f"kappa {plain:.2f} (plain), {float(report['kappa']):.2f} (quadratic weights)",
        fontsize=10,
    )
    fig.colorbar(image, ax=right, shrink=0.8, label="items")
    return (
        png(fig),
        "pass@k of your estimator for n = 200 samples against k, and the confusion matrix and "
        "kappa of a lenient judge against a human",
    )
