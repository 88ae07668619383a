"""Mutant: the number of units to prune is int(amount * n).

Misconception: a count is the integer part. int() truncates, and floating point makes
0.29 * 100 = 28.999999999999996, so one weight too few goes; torch.nn.utils.prune
rounds (Python's round, halves to even).
"""


def _count(amount, n):
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"amount must be an int or a float, got {type(amount).__name__}")
    if isinstance(amount, numbers.Integral):
        if amount < 0:
            raise ValueError(f"amount={amount} must be >= 0")
        k = int(amount)
    else:
        if not 0.0 <= amount <= 1.0:
            raise ValueError(f"amount={amount} must be in [0, 1]")
        k = int(amount * n)
    if k > n:
        raise ValueError(f"amount={amount} asks to prune {k} units, but there are only {n}")
    return k
