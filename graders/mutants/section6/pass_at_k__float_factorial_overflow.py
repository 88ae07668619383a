"""Mutant: the binomials C(m, k) = m! / (k! (m - k)!) from a table of float64 factorials.

Misconception: the formula 1 - C(n - c, k) / C(n, k) written as it reads, vectorised with
a float factorial table. Right for small n, but 171! overflows float64 to inf, and
inf / inf is NaN: every problem with n >= 171 (unless n - c < k) comes out NaN.
"""


def pass_at_k(n, c, k):
    n_arr, c_arr = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64))
    if k < 1 or np.any(n_arr < k):
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}")
    factorial = np.cumprod(np.concatenate([[1.0], np.arange(1.0, n_arr.max() + 1.0)]))  # [m] = m!

    def comb(m, r):
        return factorial[m] / (factorial[r] * factorial[m - r])

    fails = n_arr - c_arr
    out = np.where(fails < k, 1.0, 1.0 - comb(np.maximum(fails, k), k) / comb(n_arr, k))
    return float(out) if out.ndim == 0 else out
