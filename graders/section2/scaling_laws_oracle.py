"""Oracles for exercise 2.6 (scaling laws) that only the hidden graders see.

* :func:`compute_optimal` — the closed form of the compute-optimal split.
* :func:`huber_objective` — Hoffmann et al.'s objective at given parameters.
* :func:`fit_chinchilla` — that objective minimised by scipy's ``least_squares`` (a
  trust-region method, not the L-BFGS the learner is pointed to), whose ``loss="huber"``
  with ``f_scale=delta`` is 2 delta^2 times the same Huber loss, so it has the same
  minimum; started from the best points of the paper's grid.
* :func:`fit_power_law` — ``scipy.optimize.curve_fit`` of log(a N^-alpha + c) on log L.

They would solve the exercise, so they stay here, never in the learner's tree; the
learner-facing oracles (the law itself, the sweeps, ``minimize_scalar`` along an
iso-FLOP line) are in ``exercises/support/section2/scaling_laws.py``.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import curve_fit, least_squares
from scipy.special import logsumexp

DELTA = 1e-3

_GRID = np.array(
    list(
        itertools.product(
            np.arange(0.0, 26.0, 5.0),  # log A
            np.arange(0.0, 26.0, 5.0),  # log B
            np.arange(-1.0, 1.01, 0.5),  # log E
            np.arange(0.0, 2.01, 0.5),  # alpha
            np.arange(0.0, 2.01, 0.5),  # beta
        )
    )
)


def compute_optimal(C, E, A, B, alpha, beta):
    """(N_opt, D_opt) minimising E + A N^-alpha + B D^-beta subject to 6 N D = C."""
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    C = np.asarray(C, dtype=np.float64)
    return G * (C / 6.0) ** (beta / (alpha + beta)), (C / 6.0) ** (alpha / (alpha + beta)) / G


def _terms(theta, log_n, log_d):
    log_a, log_b, log_e, alpha, beta = theta
    return np.stack([log_a - alpha * log_n, log_b - beta * log_d, np.full_like(log_n, log_e)])


def _log_residuals(theta, log_n, log_d, log_l):
    return logsumexp(_terms(theta, log_n, log_d), axis=0) - log_l


def _log_residuals_jacobian(theta, log_n, log_d, log_l):
    """d r_i / d theta: the softmax weights of the three terms, times d term / d theta."""
    terms = _terms(theta, log_n, log_d)
    w = np.exp(terms - logsumexp(terms, axis=0))
    return np.stack([w[0], w[1], w[2], -w[0] * log_n, -w[1] * log_d], axis=1)


def huber_objective(params, N, D, L, delta: float = DELTA) -> float:
    """sum_i Huber_delta(log L_hat(N_i, D_i) - log L_i) at ``params`` = (E, A, B, alpha, beta)."""
    E, A, B, alpha, beta = (float(p) for p in params)
    if min(E, A, B) <= 0:
        return float("inf")
    r = _log_residuals((np.log(A), np.log(B), np.log(E), alpha, beta), np.log(N), np.log(D), np.log(L))
    a = np.abs(r)
    return float(np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)).sum())


def fit_chinchilla(N, D, L, refined: int = 4):
    """The Huber fit's minimum: ``least_squares`` from the grid's ``refined`` best points.
    Returns ((E, A, B, alpha, beta), objective value)."""
    N, D, L = (np.asarray(v, dtype=np.float64) for v in (N, D, L))
    args = (np.log(N), np.log(D), np.log(L))
    on_grid = _grid_values(*(v[::4] for v in args))  # screened on a quarter of the runs
    best = None
    for start in _GRID[np.argsort(on_grid)[:refined]]:
        fit = least_squares(
            _log_residuals,
            start,
            jac=_log_residuals_jacobian,
            args=args,
            loss="huber",
            f_scale=DELTA,
            x_scale="jac",
            ftol=1e-10,
            xtol=1e-10,
            gtol=1e-10,
        )
        if best is None or fit.cost < best.cost:
            best = fit
    log_a, log_b, log_e, alpha, beta = best.x
    params = (float(np.exp(log_e)), float(np.exp(log_a)), float(np.exp(log_b)), float(alpha), float(beta))
    return params, huber_objective(params, N, D, L)


def _grid_values(log_n, log_d, log_l):
    """The Huber objective at every grid point, in chunks."""
    out = []
    for part in np.array_split(_GRID, 15):
        terms = np.stack(
            [
                part[:, :1] - part[:, 3:4] * log_n,
                part[:, 1:2] - part[:, 4:5] * log_d,
                np.broadcast_to(part[:, 2:3], (len(part), len(log_n))),
            ]
        )
        r = logsumexp(terms, axis=0) - log_l
        a = np.abs(r)
        out.append(np.where(a <= DELTA, 0.5 * r * r, DELTA * (a - 0.5 * DELTA)).sum(axis=1))
    return np.concatenate(out)


def _log_power_law(log_n, log_a, alpha, log_c):
    return np.logaddexp(log_a - alpha * log_n, log_c)


def power_law_objective(params, N, L) -> float:
    """sum_i (log(a N_i^-alpha + c) - log L_i)^2 at ``params`` = (a, alpha, c)."""
    a, alpha, c = (float(p) for p in params)
    if min(a, c) <= 0:
        return float("inf")
    r = _log_power_law(np.log(N), np.log(a), alpha, np.log(c)) - np.log(L)
    return float(r @ r)


def fit_power_law(N, L):
    """The least-squares fit on log L by ``curve_fit``, from a few starts. Returns
    ((a, alpha, c), objective value)."""
    N, L = np.asarray(N, dtype=np.float64), np.asarray(L, dtype=np.float64)
    log_n, log_l = np.log(N), np.log(L)
    best = None
    for alpha in (0.1, 0.3, 0.6, 1.0):
        for share in (0.2, 0.6, 0.95):
            c = share * L.min()
            start = [np.log(np.median(L) - c) + alpha * np.median(log_n), alpha, np.log(c)]
            try:
                p, _ = curve_fit(_log_power_law, log_n, log_l, p0=start, maxfev=20000, ftol=1e-14, xtol=1e-14)
            except RuntimeError:
                continue
            params = (float(np.exp(p[0])), float(p[1]), float(np.exp(p[2])))
            value = power_law_objective(params, N, L)
            if best is None or value < best[1]:
                best = (params, value)
    return best
