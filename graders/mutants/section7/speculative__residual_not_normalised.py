"""Mutant: the residual is max(0, p - q) without dividing by its sum.

Misconception: p - q "is already a probability difference". Its positive part sums to
1 - sum min(p, q), not 1; torch.multinomial forgives it, anything that reads the row
as probabilities (an inverse-CDF draw, a log-probability, a figure) does not.
"""


def residual_distribution(p, q):
    return torch.clamp(p - q, min=0)
