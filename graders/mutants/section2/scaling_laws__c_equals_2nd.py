"""Mutant: compute_optimal spends C = 2 N D FLOPs, not 6 N D.

Misconception: "a token costs 2 FLOPs per parameter" (one multiply-add per weight).
That is the forward pass; training adds the backward pass, twice as costly: 6 N D.
"""

_reference_compute_optimal = compute_optimal


def compute_optimal(C, E, A, B, alpha, beta):
    return _reference_compute_optimal(np.asarray(C, dtype=np.float64) * 3.0, E, A, B, alpha, beta)
