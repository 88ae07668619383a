"""Support for exercise 2.6 (scaling laws and compute-optimal training): what its public
tests, graders, notebook and `llmkit show` share.

* the law itself, ``chinchilla_loss``, and two sets of its constants: Hoffmann et al.'s
  published fit and Besiroglu et al.'s refit of the same data;
* the training runs the tests fit, generated here from known constants (seeded): a sweep
  over model sizes N and token counts D, with 1 % multiplicative noise and a few
  diverged runs, and runs that follow a power law in N alone;
* an oracle for the compute-optimal split that knows no formula: scipy's
  ``minimize_scalar`` along the iso-FLOP line D = C / (6 N);
* the named misconceptions, ``check_one_call`` (the ban test's call) and ``figure``.

It ships to learners: nothing here fits a law or gives the closed form.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from scipy.optimize import curve_fit, minimize_scalar

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import Misconception, Misconceptions, assert_close

README = "exercises/section2/README.md"

# (E, A, B, alpha, beta) of L(N, D) = E + A / N^alpha + B / D^beta.
HOFFMANN = (1.69, 406.4, 410.7, 0.34, 0.28)  # Hoffmann et al. (2022), approach 3, as published
# Besiroglu et al. (2024), "Chinchilla Scaling: A replication attempt": the same
# approach-3 fit redone on data read off the paper's figure. Its split is ~20 tokens
# per parameter, as the paper's approaches 1 and 2 found; the published constants above
# give 26 to 150 (see the README, "2.6 — 20 tokens per parameter is a result, not a rule").
BESIROGLU = (1.8172, 482.01, 2085.43, 0.3478, 0.3658)
NAMES = ("E", "A", "B", "alpha", "beta")

HUBER_DELTA = 1e-3  # Hoffmann et al.'s delta, on residuals of log L
NOISE = 0.01  # multiplicative noise of a run's final loss
DIVERGED = 0.05  # share of runs that diverged or were badly tuned
SWEEP_N = (1e6, 1e10)  # model sizes of a sweep: 1M to 10B parameters, ...
SWEEP_D = (1e8, 1e12)  # ... each trained on 100M to 1T tokens

# L(N) = a N^-alpha + c: the paper's law with unlimited data (D -> infinity).
POWER_LAW = (406.4, 0.34, 1.69)  # (a, alpha, c)
POWER_LAW_N = (1e5, 1e11)


# --- the law and the runs ---------------------------------------------------------------


def chinchilla_loss(N, D, E, A, B, alpha, beta):
    """L(N, D) = E + A / N^alpha + B / D^beta, elementwise, in float64."""
    N, D = np.asarray(N, dtype=np.float64), np.asarray(D, dtype=np.float64)
    return E + A * N**-alpha + B * D**-beta


def power_law(N, a, alpha, c):
    """L(N) = a N^-alpha + c, elementwise, in float64."""
    return a * np.asarray(N, dtype=np.float64) ** -alpha + c


def sweep(law=HOFFMANN, seed: int = 0, *, noise: float = NOISE, diverged: float = DIVERGED, size: int = 20):
    """Final losses of a grid of training runs: ``size`` model sizes N from 1M to 10B
    times ``size`` token counts D from 100M to 1T (400 runs by default), each loss
    ``law`` times exp(noise * a standard normal), and a ``diverged`` share of the runs
    25 % to 100 % above the law (unstable or badly tuned runs). Returns float64 arrays
    (N, D, L), one entry per run."""
    rng = np.random.default_rng(seed)
    N, D = np.meshgrid(np.geomspace(*SWEEP_N, size), np.geomspace(*SWEEP_D, size), indexing="ij")
    N, D = N.ravel(), D.ravel()
    L = chinchilla_loss(N, D, *law) * np.exp(noise * rng.standard_normal(N.size))
    bad = rng.choice(N.size, int(round(diverged * N.size)), replace=False)
    L[bad] *= 1.0 + rng.uniform(0.25, 1.0, bad.size)
    return N, D, L


def power_law_runs(params=POWER_LAW, seed: int = 0, *, noise: float = NOISE, n: int = 40):
    """``n`` runs with N from 100K to 100B parameters and L = a N^-alpha + c times
    exp(noise * a standard normal). Returns float64 arrays (N, L)."""
    rng = np.random.default_rng(seed)
    N = np.geomspace(*POWER_LAW_N, n)
    return N, power_law(N, *params) * np.exp(noise * rng.standard_normal(n))


def random_law(seed: int):
    """Constants (E, A, B, alpha, beta) of a plausible law: E in [1.5, 2.5], exponents in
    [0.25, 0.45], and A, B such that each reducible term is 0.2 to 0.8 nats in the middle
    of a sweep (N = 1e8, D = 1e10), so that the runs see every term."""
    rng = np.random.default_rng(seed)
    E, alpha, beta = rng.uniform(1.5, 2.5), rng.uniform(0.25, 0.45), rng.uniform(0.25, 0.45)
    return (
        float(E),
        float(rng.uniform(0.2, 0.8) * 1e8**alpha),
        float(rng.uniform(0.2, 0.8) * 1e10**beta),
        float(alpha),
        float(beta),
    )


def random_power_law(seed: int):
    """(a, alpha, c) with alpha in [0.2, 0.5], c in [1.5, 2.5] and a N^-alpha 0.2 to 1 nat at N = 1e8."""
    rng = np.random.default_rng(seed)
    alpha = rng.uniform(0.2, 0.5)
    return float(rng.uniform(0.2, 1.0) * 1e8**alpha), float(alpha), float(rng.uniform(1.5, 2.5))


laws = st.integers(0, 2**31 - 1).map(random_law)  # hypothesis: a random plausible law


def numbers(value) -> np.ndarray:
    """A learner's number(s) (floats, numpy scalars or arrays, lists, tensors) as float64."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def dead_terms(params, N, D, L) -> list[str]:
    """The terms of a fitted law that are below 1/1000 of the smallest loss at every run:
    a fit stuck where a term's gradient vanished (see "2.6 — One starting point is not
    enough")."""
    E, A, B, alpha, beta = (float(p) for p in params)
    floor = 1e-3 * float(np.min(L))
    terms = {
        "E": np.full(1, E),
        "A / N^alpha": A * np.asarray(N, dtype=np.float64) ** -alpha,
        "B / D^beta": B * np.asarray(D, dtype=np.float64) ** -beta,
    }
    return [name for name, values in terms.items() if np.all(np.abs(values) < floor)]


# --- the compute-optimal split, found numerically ---------------------------------------


def iso_flop_optimum(C, E, A, B, alpha, beta, *, flops_per_param_token: float = 6.0):
    """(N, D) that minimise ``chinchilla_loss`` on the line flops_per_param_token * N * D = C,
    for each budget in ``C`` (a float or an array), found by scipy's bounded Brent search
    over log N: no formula, only the law and the constraint. Arrays of C's shape."""
    C = np.asarray(C, dtype=np.float64)
    n_opt = np.empty(C.shape)
    for index, budget in np.ndenumerate(C):
        tokens = budget / flops_per_param_token  # N * D

        def loss(log_n, tokens=tokens):
            return A * np.exp(-alpha * log_n) + B * np.exp(-beta * (np.log(tokens) - log_n))

        result = minimize_scalar(
            loss, bounds=(-10.0, np.log(tokens) + 10.0), method="bounded", options={"xatol": 1e-12}
        )
        # a second search in a narrow window around the first answer: N_opt is then within
        # 4e-10 (relative) of the closed form, for 22 laws and C = 1e17 ... 1e26
        result = minimize_scalar(
            loss, bounds=(result.x - 1e-4, result.x + 1e-4), method="bounded", options={"xatol": 1e-14}
        )
        n_opt[index] = np.exp(result.x)
    return n_opt, C / (flops_per_param_token * n_opt)


# --- what the known mistakes return --------------------------------------------------------


def _straight_line(N, L):
    """log L = log a - alpha log N fitted by numpy's polyfit: c is left out."""
    slope, intercept = np.polyfit(np.log(numbers(N)), np.log(numbers(L)), 1)
    return np.array([np.exp(intercept), -slope, 0.0])


def _mse_linear_space(N, D, L):
    """The law's losses at the runs when fitted by least squares on L itself (curve_fit)."""
    N, D, L = numbers(N), numbers(D), numbers(L)

    def law(_, E, A, B, alpha, beta):
        return chinchilla_loss(N, D, E, A, B, alpha, beta)

    fitted, _ = curve_fit(law, None, L, p0=HOFFMANN, maxfev=20000)
    return chinchilla_loss(N, D, *fitted)


def _split(flops_per_param_token=6.0, swap=False):
    def variant(C, E, A, B, alpha, beta):
        if swap:
            alpha, beta = beta, alpha
        return np.stack(
            iso_flop_optimum(C, E, A, B, alpha, beta, flops_per_param_token=flops_per_param_token)
        )

    return variant


def _twenty_tokens(C, E, A, B, alpha, beta):
    n = np.sqrt(np.asarray(C, dtype=np.float64) / 120.0)
    return np.stack([n, 20.0 * n])


MISCONCEPTIONS = Misconceptions(
    README,
    Misconception(
        "straight_line_log_log",
        "a straight line in log-log space",
        "log L = log a - alpha log N fits L = a N^-alpha only: with the floor c the curve bends, "
        "so fit a N^-alpha + c itself (a line through log L ignores c and flattens alpha)",
        readme="2.6 — The irreducible loss c",
        variants={"fit_power_law": _straight_line},
    ),
    Misconception(
        "mse_linear_space",
        "least squares on L instead of Huber on log L",
        "squared errors of L let a few diverged runs pull the whole fit; Hoffmann et al. minimise "
        "the Huber loss (delta = 1e-3) of log L_hat - log L, which treats a big miss like an absolute error",
        readme="2.6 — Huber on log L, not squares of L",
        variants={"fit_chinchilla (losses at the runs)": _mse_linear_space},
    ),
    Misconception(
        "single_start",
        "one starting point",
        "from a bad start a term of the log-sum-exp can be ~0 at every run: its gradient vanishes "
        "and the optimiser stops there; start from a grid of points and keep the best minimum",
        readme="2.6 — One starting point is not enough",
    ),
    Misconception(
        "every_grid_point",
        "the optimiser run from every grid point",
        "hundreds of L-BFGS runs take seconds: evaluate the objective at the whole grid at once "
        "(broadcasting) and refine only the best few points",
        readme="2.6 — One starting point is not enough",
        kind="speed",
    ),
    Misconception(
        "c_equals_2nd",
        "C = 2 N D",
        "training costs about 6 N D FLOPs (forward 2 N D, backward 4 N D): 2 N D is the forward pass only",
        readme="2.6 — C = 6ND",
        variants={"compute_optimal": _split(flops_per_param_token=2.0)},
    ),
    Misconception(
        "exponents_swapped",
        "alpha and beta swapped",
        "alpha is the exponent of N and beta that of D, so N_opt grows as C^(beta / (alpha + beta)) "
        "and D_opt as C^(alpha / (alpha + beta))",
        readme="2.6 — Which exponent goes with N",
        variants={"compute_optimal": _split(swap=True)},
    ),
    Misconception(
        "twenty_tokens_rule",
        "20 tokens per parameter, whatever the law",
        "~20 tokens per parameter is what one fit gave; the split comes from the law's constants: "
        "minimise L(N, C / 6N) over N",
        readme="2.6 — 20 tokens per parameter is a result, not a rule",
        variants={"compute_optimal": _twenty_tokens},
    ),
)


# --- the ban test's call and the figure ---------------------------------------------------


def check_one_call(impl, draw) -> None:
    """One small power-law fit of the learner's, on noise-free runs of a random law: the
    generated ban test (``test_no_library_shortcuts``) makes it after its static scan,
    with ``scipy.optimize.curve_fit`` trapped, so code that does nothing earns nothing."""
    params = random_power_law(int(draw.integers(0, 2**31)))
    N, L = power_law_runs(params, noise=0.0, n=12)
    assert_close(
        numbers(impl.fit_power_law(N, L)),
        np.array(params),
        rtol=0.05,
        atol=0.0,
        name=f"fit_power_law on noise-free runs of a={params[0]:.4g}, alpha={params[1]:.3f}, "
        f"c={params[2]:.3f}",
    )


def figure(impl) -> Figure:
    """Left: the learner's fit of the kit's sweep, as iso-loss contours over (N, D), with
    iso-FLOP lines and the learner's compute-optimal frontier. Right: the learner's power
    law through runs of the paper's N-only law, beside a straight line in log-log."""
    from matplotlib import colormaps

    N, D, L = sweep(HOFFMANN, seed=0)
    fit = tuple(float(p) for p in numbers(impl.fit_chinchilla(N, D, L)))
    budgets = np.geomspace(1e17, 1e25, 41)
    n_opt, d_opt = (numbers(v) for v in impl.compute_optimal(budgets, *fit))

    fig, (left, right) = new_figure(11.5, 4.8, ncols=2)
    grid_n, grid_d = np.meshgrid(np.geomspace(1e6, 1e13, 240), np.geomspace(1e8, 1e14, 240))
    levels = fit[0] + np.array([0.05, 0.1, 0.2, 0.4, 0.8, 1.6])
    shades = colormaps["viridis"](np.linspace(0.0, 0.75, len(levels)))  # dark to green: readable labels
    contours = left.contour(
        grid_n, grid_d, chinchilla_loss(grid_n, grid_d, *fit), levels=levels, colors=shades, linewidths=1.2
    )
    left.clabel(contours, fontsize=7, fmt="L=%.2f")
    n_line = np.geomspace(1e6, 1e13, 50)
    marked = np.array([1e18, 1e20, 1e22, 1e24])
    marked_n, marked_d = (numbers(v) for v in impl.compute_optimal(marked, *fit))
    for budget, n_at, d_at in zip(marked, marked_n, marked_d):
        left.plot(n_line, budget / (6 * n_line), color="0.7", lw=0.8, ls="--")
        left.annotate(
            f"{budget:.0e} FLOPs",
            (n_at, d_at),
            xytext=(6, -2),
            textcoords="offset points",
            fontsize=7,
            color="0.3",
        )
    left.plot(n_opt, d_opt, color="crimson", lw=2.0, label="your compute_optimal, 1e17 to 1e25 FLOPs")
    left.scatter(marked_n, marked_d, color="crimson", s=14, zorder=4)
    left.scatter(N, D, s=2, color="0.65", label="the sweep's 400 runs (fitted)")
    left.scatter([70e9], [1.4e12], marker="*", s=90, color="black", zorder=5, label="Chinchilla (70B, 1.4T)")
    left.scatter([280e9], [300e9], marker="s", s=30, color="black", zorder=5, label="Gopher (280B, 300B)")
    left.set(
        xscale="log",
        yscale="log",
        xlim=(1e6, 1e13),
        ylim=(1e8, 1e14),
        xlabel="parameters N",
        ylabel="training tokens D",
    )
    ratio = d_opt[len(budgets) // 2] / n_opt[len(budgets) // 2]
    left.set_title(
        f"your fit: E={fit[0]:.2f}, alpha={fit[3]:.3f}, beta={fit[4]:.3f}: "
        f"{ratio:.0f} tokens/parameter at 1e21 FLOPs",
        fontsize=9,
    )
    left.legend(fontsize=7, loc="upper left")

    pN, pL = power_law_runs(POWER_LAW, seed=0)
    a, alpha, c = (float(p) for p in numbers(impl.fit_power_law(pN, pL)))
    fine = np.geomspace(*POWER_LAW_N, 200)
    line = _straight_line(pN, pL)
    right.scatter(pN, pL, s=10, color="0.4", label="runs (L = 406.4 N^-0.34 + 1.69, 1% noise)")
    right.plot(
        fine,
        power_law(fine, a, alpha, c),
        color="crimson",
        lw=2.0,
        label=f"your fit: {a:.1f} N^-{alpha:.3f} + {c:.3f}",
    )
    right.plot(
        fine,
        power_law(fine, *line),
        color="tab:blue",
        ls="--",
        label=f"a straight line in log-log: alpha = {line[1]:.3f}, no c",
    )
    right.axhline(c, color="crimson", lw=0.8, ls=":")
    right.set(xscale="log", yscale="log", xlabel="parameters N", ylabel="loss L")
    right.set_title("the floor c bends the log-log line", fontsize=9)
    right.legend(fontsize=7)
    return png(fig), (
        "Iso-loss contours of your Chinchilla fit with your compute-optimal frontier across iso-FLOP "
        "lines, and your power-law fit beside a straight log-log line"
    )


def check_compute_optimal(impl, C, law, want, *, name: str, rtol: float, hint: str) -> np.ndarray:
    """The learner's (N_opt, D_opt) for budgets ``C`` under ``law`` against ``want``; returns them."""
    got = np.stack([numbers(v) for v in impl.compute_optimal(C, *law)])
    assert_close(
        got,
        np.stack(want),
        rtol=rtol,
        atol=0.0,
        name=name,
        hint=hint,
        suspects=MISCONCEPTIONS.on("compute_optimal", C, *law),
    )
    return got
