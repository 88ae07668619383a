"""Exercise 2.6 — scaling laws and compute-optimal training (Chinchilla).

How does a language model's loss fall as it grows (N parameters) and reads more text
(D tokens), and how should a fixed compute budget be split between the two? You fit
the answer from training runs, as Hoffmann et al. (2022, "Training Compute-Optimal
Large Language Models") did, then use it:

* ``fit_power_law(N, L)``: the one-variable law L = a N^-alpha + c;
* ``fit_chinchilla(N, D, L)``: L = E + A / N^alpha + B / D^beta, fitted the way the paper's
  "approach 3" does (Huber loss on log L, a grid of starting points);
* ``compute_optimal(C, ...)``: the N and D that minimise that L for C = 6 N D FLOPs.

Replace every ``raise NotImplementedError`` with your code, then run

    pytest exercises/section2/test_scaling_laws.py      (or: llmkit check 2.6)

Inputs are 1-D sequences of floats (numpy arrays or lists). Use numpy, and for the fits
a local optimiser: ``scipy.optimize.minimize`` (L-BFGS-B, as the paper, or BFGS),
``scipy.optimize.least_squares`` or ``torch.optim.LBFGS`` (float64). Give it the
gradient (worked out by hand, or by torch's autograd): finite differences cost five or
six objective evaluations per step.

Banned here (a static scan and a runtime trap enforce it): ``scipy.optimize.curve_fit``.
It writes the objective for you, always the plain squared error of whatever you hand it,
and writing the objective (which residual, in which space, with which loss) is what
this exercise is about.
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (you will want numpy)


def fit_power_law(N, L) -> tuple[float, float, float]:
    """Fit L = a * N^(-alpha) + c to runs (N[i], L[i]); return (a, alpha, c) as floats.

    N: model sizes (parameters), L: their final losses (nats per token); 1-D, the same
    length (at least 3), every value positive.

    Fit by least squares **on log L**: minimise

        sum_i ( log(a * N_i^(-alpha) + c) - log L_i )^2

    over a > 0, alpha and c > 0 (optimise log a and log c, so they stay positive). c is the
    irreducible loss: no model size goes below it. The objective has more than one
    minimum; start from a few points (alpha around 0.1 to 1, c a fraction of min(L)) and
    keep the best.

    Raises ValueError when N and L differ in length, have fewer than 3 entries, or hold
    a value that is not positive (or not finite).
    """
    raise NotImplementedError("exercise 2.6: write fit_power_law()")


def fit_chinchilla(N, D, L) -> tuple[float, float, float, float, float]:
    """Fit L(N, D) = E + A / N^alpha + B / D^beta; return (E, A, B, alpha, beta) as floats.

    N: parameters, D: training tokens, L: final loss of each run; 1-D, the same length
    (at least 5), every value positive.

    As in Hoffmann et al.'s approach 3 (their appendix D.2), with a = log A, b = log B,
    e = log E, minimise over (a, b, e, alpha, beta)

        sum_i Huber_delta( LSE(a - alpha log N_i,  b - beta log D_i,  e) - log L_i )

    where LSE(x, y, z) = log(exp x + exp y + exp z) (so LSE(...) = log of the law's L),
    computed stably, and Huber_delta(r) = r^2 / 2 if |r| <= delta, else
    delta * (|r| - delta / 2), with delta = 1e-3. On residuals of 1 % the Huber loss is
    nearly an absolute error: a few diverged runs, far above the law, do not pull the fit.

    The objective has poor local minima: from a bad start one term of the LSE is ~0 at
    every run, its gradient vanishes and the optimiser stops. Start from a grid and keep
    the lowest objective. The paper's grid: alpha, beta in {0, 0.5, ..., 2},
    e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25} (4500 points). A local optimiser
    run from each of 4500 points is far too slow here; either run it from a coarser grid,
    or evaluate the objective at every grid point at once (numpy broadcasting) and refine
    the best few.

    One call on 400 runs must take at most 2 s (the graders time it).

    Raises ValueError when N, D and L differ in length, have fewer than 5 entries, or hold
    a value that is not positive (or not finite).
    """
    raise NotImplementedError("exercise 2.6: write fit_chinchilla()")


def compute_optimal(C, E, A, B, alpha, beta):
    """The compute-optimal model size and token count for a training budget of C FLOPs.

    Minimise L(N, D) = E + A / N^alpha + B / D^beta subject to C = 6 N D (training
    costs about 6 FLOPs per parameter per token). Work it out on paper, then code the
    closed form: no numerical search.

    C: a positive float, or a numpy array of them. E, A, B, alpha, beta: floats, the law's
    constants (as ``fit_chinchilla`` returns them); A, B, alpha, beta > 0, E >= 0.

    Returns (N_opt, D_opt) in float64, each of C's shape (for a float C, floats or 0-d
    arrays), with 6 * N_opt * D_opt == C.

    Raises ValueError for a C that is not positive (or not finite), for A, B, alpha or
    beta not positive, or a negative E.
    """
    raise NotImplementedError("exercise 2.6: write compute_optimal()")
