"""Exercise 6.3 — pass@k and agreement with a judge: the reference solution.

pass@k as a product of ratios (no big numbers, vectorised over problems); Cohen's kappa
from the confusion matrix and its chance counterpart; a judge-vs-human report.
"""

from __future__ import annotations

import numpy as np


def pass_at_k(n, c, k: int):
    """The unbiased pass@k estimate, 1 - C(n - c, k) / C(n, k), per problem."""
    n_arr, c_arr = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64))
    if k < 1 or np.any(n_arr < k):
        raise ValueError(f"pass@k needs 1 <= k <= n for every problem, got k={k} and n={n}")
    if np.any(c_arr < 0) or np.any(c_arr > n_arr):
        raise ValueError("pass@k needs 0 <= c <= n for every problem")
    # C(n-c, k) / C(n, k) = prod over i = n-c+1 .. n of (1 - k / i): the factorials cancel.
    # One row per problem, one column per factor; a row of c factors is padded with ones.
    flat_n, flat_c = n_arr.reshape(-1, 1), c_arr.reshape(-1, 1)
    steps = np.arange(max(int(c_arr.max(initial=0)), 1)).reshape(1, -1)
    i = np.maximum(flat_n - steps, 1)  # n, n-1, ..., the first c of them are used
    used = (steps < flat_c) & (flat_n - flat_c >= k)  # n - c < k is 1.0: no factors needed
    factors = np.where(used, 1.0 - k / i, 1.0)
    all_fail = factors.prod(axis=1).reshape(n_arr.shape)
    out = np.where(n_arr - c_arr < k, 1.0, 1.0 - all_fail)
    return float(out) if out.ndim == 0 else out


def _label_order(a, b, labels) -> list:
    if labels is None:
        return sorted(set(a) | set(b))
    return list(labels)


def _counts(a, b, labels: list) -> np.ndarray:
    """[i, j] = how many items a labelled labels[i] and b labelled labels[j]."""
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for x, y in zip(a, b):
        if x not in index or y not in index:
            raise ValueError(f"label {x if x not in index else y!r} is not in labels={labels!r}")
        counts[index[x], index[y]] += 1
    return counts


def _disagreement_weights(n_labels: int, weights) -> np.ndarray:
    """What a disagreement between categories i and j costs: 0 on the diagonal."""
    position = np.arange(n_labels)
    distance = np.abs(position[:, None] - position[None, :]).astype(np.float64)
    if weights is None:
        return (distance > 0).astype(np.float64)
    if weights == "linear":
        return distance
    if weights == "quadratic":
        return distance**2
    raise ValueError(f'weights must be None, "linear" or "quadratic", got {weights!r}')


def cohen_kappa(a, b, labels=None, weights=None) -> float:
    """Cohen's kappa between raters a and b (scikit-learn's cohen_kappa_score)."""
    a, b = list(a), list(b)
    if len(a) != len(b) or not a:
        raise ValueError(f"a and b must label the same N >= 1 items, got {len(a)} and {len(b)}")
    labels = _label_order(a, b, labels)
    observed = _counts(a, b, labels).astype(np.float64)
    # Independent raters: row totals (a's frequencies) times column totals (b's), over N.
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    w = _disagreement_weights(len(labels), weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(1.0 - (w * observed).sum() / (w * expected).sum())


def judge_agreement(judge_scores, human_scores, labels=None, weights=None) -> dict:
    """Accuracy, kappa and the confusion matrix (rows: human, columns: judge)."""
    judge, human = list(judge_scores), list(human_scores)
    if len(judge) != len(human) or not judge:
        raise ValueError(
            f"the judge and the human must score the same N >= 1 items, got {len(judge)} and {len(human)}"
        )
    labels = _label_order(human, judge, labels)
    matrix = _counts(human, judge, labels)
    return {
        "accuracy": float(np.trace(matrix) / matrix.sum()),
        "kappa": cohen_kappa(human, judge, labels, weights),
        "confusion_matrix": matrix,
        "labels": labels,
    }
