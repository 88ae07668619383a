"""Mutant: compute_optimal uses "20 tokens per parameter": N = sqrt(C / 120), D = 20 N.

Misconception: "Chinchilla-optimal means 20 tokens per parameter". That is what one
fit gave at one range of budgets; the split follows from the law's constants, and
other constants (another dataset, another architecture) give another split.
"""

_reference_compute_optimal = compute_optimal


def compute_optimal(C, E, A, B, alpha, beta):
    _reference_compute_optimal(C, E, A, B, alpha, beta)  # the same checks of the inputs
    n_opt = np.sqrt(np.asarray(C, dtype=np.float64) / 120.0)
    return n_opt, 20.0 * n_opt
