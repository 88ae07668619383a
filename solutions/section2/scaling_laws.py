"""Exercise 2.6: scaling laws and compute-optimal training (Chinchilla), the reference.

Three functions: a saturating power law in one variable fitted by least squares on
log L, the Chinchilla law L(N, D) = E + A / N^alpha + B / D^beta fitted as in Hoffmann
et al.'s approach 3 (Huber loss on log L, the prediction written as a log-sum-exp, a
grid of starting points, the best minimum kept), and the compute-optimal split of a
budget C = 6 N D in closed form.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import minimize

HUBER_DELTA = 1e-3

# Hoffmann et al.'s grid of initialisations, in the fit's parameters
# (a = log A, b = log B, e = log E, alpha, beta): 6 * 6 * 5 * 5 * 5 = 4500 points.
GRID = np.array(
    list(
        itertools.product(
            np.arange(0.0, 26.0, 5.0),  # a
            np.arange(0.0, 26.0, 5.0),  # b
            np.arange(-1.0, 1.01, 0.5),  # e
            np.arange(0.0, 2.01, 0.5),  # alpha
            np.arange(0.0, 2.01, 0.5),  # beta
        )
    )
)
REFINED = 8  # the grid's best points, by objective, refined with L-BFGS


def _positive_arrays(function: str, min_points: int, **arrays) -> list[np.ndarray]:
    """The arguments as 1-D float64 arrays, or a ValueError that says what is wrong."""
    out = []
    for name, value in arrays.items():
        array = np.asarray(value, dtype=np.float64)
        if array.ndim != 1:
            raise ValueError(f"{function}: {name} must be 1-D, got shape {array.shape}")
        if not np.all(np.isfinite(array)) or np.any(array <= 0):
            raise ValueError(f"{function}: every value of {name} must be positive and finite")
        out.append(array)
    lengths = {name: len(a) for name, a in zip(arrays, out)}
    if len(set(lengths.values())) != 1:
        listed = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"{function}: the inputs must have the same length ({listed})")
    if len(out[0]) < min_points:
        raise ValueError(f"{function}: needs at least {min_points} points, got {len(out[0])}")
    return out


# --- L = a * N^-alpha + c -------------------------------------------------------------


def _power_law_objective(p, x, y):
    """Sum of squared log residuals and its gradient; p = (log a, alpha, log c), x = log N."""
    la, alpha, lc = p
    t = la - alpha * x
    m = np.maximum(t, lc)
    wt, wc = np.exp(t - m), np.exp(lc - m)
    s = wt + wc
    r = m + np.log(s) - y
    g = 2.0 * r / s
    gt = g * wt
    return float(r @ r), np.array([gt.sum(), -(gt @ x), (g * wc).sum()])


def fit_power_law(N, L) -> tuple[float, float, float]:
    N, L = _positive_arrays("fit_power_law", 3, N=N, L=L)
    x, y = np.log(N), np.log(L)
    mid = len(x) // 2
    order = np.argsort(x)
    x_mid, l_mid = x[order[mid]], L[order[mid]]
    best = None
    for alpha in (0.1, 0.3, 0.6, 1.0):
        for share in (0.1, 0.5, 0.9):  # c as a share of the smallest loss
            c = share * L.min()
            start = np.array([np.log(max(l_mid - c, 1e-12 * l_mid)) + alpha * x_mid, alpha, np.log(c)])
            result = minimize(_power_law_objective, start, args=(x, y), jac=True, method="L-BFGS-B")
            if best is None or result.fun < best.fun:
                best = result
    la, alpha, lc = best.x
    return float(np.exp(la)), float(alpha), float(np.exp(lc))


# --- L = E + A / N^alpha + B / D^beta ---------------------------------------------------


def _huber(r):
    a = np.abs(r)
    return np.where(a <= HUBER_DELTA, 0.5 * r * r, HUBER_DELTA * (a - 0.5 * HUBER_DELTA))


def _grid_objective(X, x, z, y):
    """The Huber objective at every row of X, (S, 5), at once."""
    a, b, e, alpha, beta = (X[:, i : i + 1] for i in range(5))
    t0, t1 = a - alpha * x, b - beta * z
    m = np.maximum(np.maximum(t0, t1), e)
    lse = m + np.log(np.exp(t0 - m) + np.exp(t1 - m) + np.exp(e - m))
    return _huber(lse - y).sum(axis=1)


def _chinchilla_objective(p, x, z, y):
    """Huber(LSE(a - alpha x, b - beta z, e) - y) summed, and its gradient (x = log N, z = log D)."""
    a, b, e, alpha, beta = p
    t0, t1 = a - alpha * x, b - beta * z
    m = np.maximum(np.maximum(t0, t1), e)
    w0, w1, w2 = np.exp(t0 - m), np.exp(t1 - m), np.exp(e - m)
    s = w0 + w1 + w2
    r = m + np.log(s) - y
    g = np.clip(r, -HUBER_DELTA, HUBER_DELTA) / s
    g0, g1 = g * w0, g * w1
    grad = np.array([g0.sum(), g1.sum(), (g * w2).sum(), -(g0 @ x), -(g1 @ z)])
    return float(_huber(r).sum()), grad


def fit_chinchilla(N, D, L) -> tuple[float, float, float, float, float]:
    N, D, L = _positive_arrays("fit_chinchilla", 5, N=N, D=D, L=L)
    x, z, y = np.log(N), np.log(D), np.log(L)
    on_grid = np.concatenate([_grid_objective(part, x, z, y) for part in np.array_split(GRID, 9)])
    best = None
    for start in GRID[np.argsort(on_grid)[:REFINED]]:
        result = minimize(_chinchilla_objective, start, args=(x, z, y), jac=True, method="L-BFGS-B")
        if best is None or result.fun < best.fun:
            best = result
    a, b, e, alpha, beta = best.x
    return float(np.exp(e)), float(np.exp(a)), float(np.exp(b)), float(alpha), float(beta)


# --- the compute-optimal split ------------------------------------------------------------


def compute_optimal(C, E, A, B, alpha, beta):
    C = np.asarray(C, dtype=np.float64)
    if not np.all(np.isfinite(C)) or np.any(C <= 0):
        raise ValueError("compute_optimal: every compute budget C must be positive and finite")
    for name, value in (("A", A), ("B", B), ("alpha", alpha), ("beta", beta)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"compute_optimal: {name} must be positive, got {value}")
    if not np.isfinite(E) or E < 0:
        raise ValueError(f"compute_optimal: E must not be negative, got {E}")
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    n_opt = G * (C / 6.0) ** (beta / (alpha + beta))
    d_opt = (C / 6.0) ** (alpha / (alpha + beta)) / G
    return n_opt, d_opt
