"""Mutant: compute_optimal gives alpha to D and beta to N.

Misconception: "N_opt grows as C^(alpha / (alpha + beta))": the exponent of a term in
N looks like it should set N's share. It is the other way round: the faster the data
term falls (large beta), the more of the budget goes to parameters.
"""

_reference_compute_optimal = compute_optimal


def compute_optimal(C, E, A, B, alpha, beta):
    return _reference_compute_optimal(C, E, A, B, beta, alpha)
