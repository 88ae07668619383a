"""Mutant: pass@k as 1 - (1 - c/n)**k, the chance that k draws WITH replacement all fail.

Misconception: c/n is the model's success rate, so k independent tries fail with
probability (1 - c/n)**k. But the k programs are picked from the same n samples without
putting any back: that estimate is biased low, and it never reaches 1 when n - c < k.
"""


def pass_at_k(n, c, k):
    n_arr = np.asarray(n, dtype=np.float64)
    c_arr = np.asarray(c, dtype=np.float64)
    if k < 1 or np.any(n_arr < k):
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}")
    out = 1.0 - (1.0 - c_arr / n_arr) ** k
    return float(out) if out.ndim == 0 else out
