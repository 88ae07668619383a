"""Hidden graders for exercise 2.6 (scaling laws and compute-optimal training): 15 points,
the generated ban test (scipy.optimize.curve_fit) included.

Oracles: the closed form of the compute-optimal split and the exact minima of the two
fits' objectives, found by scipy's least_squares and curve_fit from their own starts
(graders/section2/scaling_laws_oracle.py, hidden: they would solve the exercise), and
the constants the kit generated the runs from (exercises/support/section2/
scaling_laws.py). Laws and noise come from hypothesis-drawn seeds, except where a test
compares a noisy fit with the truth: there the seeds are fixed and were checked
(300 seeds each: the exact Huber minimum has E, alpha, beta within 3.5 % of the truth
and its losses within 0.9 % of the noise-free law at every run, while least squares on
L is at least 2.9 % off).
"""

import numpy as np
import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from llmkit.testing import CheckFailure, assert_close, check_equal, compare_speed, load_oracle, load_support

pytestmark = pytest.mark.exercise("2.6")
support, oracle = load_support("2.6"), load_oracle("2.6")
mistakes = support.MISCONCEPTIONS
numbers = support.numbers
SEEDS = st.integers(0, 2**31 - 1)
# A fit costs a few tenths of a second: no shrinking of a failing example (its seed is
# in the report already).
NO_SHRINK = (Phase.explicit, Phase.generate)


def law_name(law) -> str:
    return "(" + ", ".join(f"{name}={value:.4g}" for name, value in zip(support.NAMES, law)) + ")"


# --- bad input (1 point) ------------------------------------------------------------------


@pytest.mark.points(1)
def test_bad_inputs_raise_value_error(impl):
    N, D, L = support.sweep(size=3)
    pN, pL = support.power_law_runs(n=6)

    def with_value(array, index, value):
        out = array.copy()
        out[index] = value
        return out

    law = support.HOFFMANN
    cases = {
        "fit_power_law(N, L[:-1])": lambda: impl.fit_power_law(pN, pL[:-1]),
        "fit_power_law(N[:-1], L)": lambda: impl.fit_power_law(pN[:-1], pL),
        "fit_power_law with N[2] = 0": lambda: impl.fit_power_law(with_value(pN, 2, 0.0), pL),
        "fit_power_law with L[0] = -2": lambda: impl.fit_power_law(pN, with_value(pL, 0, -2.0)),
        "fit_chinchilla(N, D, L[:-1])": lambda: impl.fit_chinchilla(N, D, L[:-1]),
        "fit_chinchilla(N[:-2], D, L)": lambda: impl.fit_chinchilla(N[:-2], D, L),
        "fit_chinchilla with N[1] = -1e8": lambda: impl.fit_chinchilla(with_value(N, 1, -1e8), D, L),
        "fit_chinchilla with D[4] = 0": lambda: impl.fit_chinchilla(N, with_value(D, 4, 0.0), L),
        "fit_chinchilla with L[7] = 0": lambda: impl.fit_chinchilla(N, D, with_value(L, 7, 0.0)),
        "compute_optimal(C=-1e21, ...)": lambda: impl.compute_optimal(-1e21, *law),
        "compute_optimal(C=[1e20, 0.0], ...)": lambda: impl.compute_optimal(np.array([1e20, 0.0]), *law),
        "compute_optimal(..., A=0, ...)": lambda: impl.compute_optimal(1e21, 1.69, 0.0, 410.7, 0.34, 0.28),
        "compute_optimal(..., B=-410.7, ...)": lambda: impl.compute_optimal(
            1e21, 1.69, 406.4, -410.7, 0.34, 0.28
        ),
        "compute_optimal(..., beta=0, ...)": lambda: impl.compute_optimal(
            1e21, 1.69, 406.4, 410.7, 0.34, 0.0
        ),
    }
    for name, call in cases.items():
        try:
            call()
        except ValueError as exc:
            if not str(exc).strip():
                raise CheckFailure(f"{name} raised a ValueError with no message; say what is wrong") from None
            continue
        except Exception as exc:  # noqa: BLE001 - the wrong error is a failure, said plainly
            raise CheckFailure(f"{name} raised {type(exc).__name__}: {exc}; expected a ValueError") from None
        raise CheckFailure(
            f"{name} returned without raising ValueError",
            hint="check the lengths match and every value is positive before fitting",
        )


# --- compute_optimal (4 points) -------------------------------------------------------------


@pytest.mark.points(2)
@settings(max_examples=30)
@given(law=support.laws, data=st.data())
def test_compute_optimal_matches_the_closed_form(impl, law, data):
    exponents = data.draw(st.lists(st.floats(15.0, 27.0), min_size=1, max_size=6), label="log10 C")
    C = 10.0 ** np.array(exponents)
    support.check_compute_optimal(
        impl,
        C,
        law,
        oracle.compute_optimal(C, *law),
        name=f"compute_optimal(C={C.tolist()}, {law_name(law)}): (N_opt, D_opt)",
        rtol=1e-8,
        hint="minimise E + A N^-alpha + B D^-beta on 6 N D = C: alpha A N^-alpha = beta B D^-beta there",
    )


@pytest.mark.points(1)
@settings(max_examples=20)
@given(law=support.laws, shape=st.sampled_from([(), (1,), (5,), (2, 3)]), seed=SEEDS)
def test_compute_optimal_spends_the_budget(impl, law, shape, seed):
    C = 10.0 ** np.random.default_rng(seed).uniform(15.0, 27.0, size=shape)
    n_opt, d_opt = (numbers(v) for v in impl.compute_optimal(C if shape else float(C), *law))
    name = f"compute_optimal(C of shape {shape}, {law_name(law)})"
    check_equal(n_opt.shape, np.shape(C), name=f"{name}: shape of N_opt")
    check_equal(d_opt.shape, np.shape(C), name=f"{name}: shape of D_opt")
    assert_close(
        6.0 * n_opt * d_opt,
        C,
        rtol=1e-12,
        atol=0.0,
        name=f"{name}: 6 N_opt D_opt",
        hint="a budget of C FLOPs trains N parameters on D = C / (6 N) tokens",
        suspects=mistakes.on("compute_optimal", C, *law),
    )


# Hoffmann et al.'s published constants do not give "20 tokens per parameter": their
# closed form gives 26 (at 1e18 FLOPs) to 153 (1e26), 93 at Gopher's 5.76e23, a known
# inconsistency of the rounded approach-3 estimates. Besiroglu et al.'s refit of the same
# data gives 24.2 at 1e19 down to 17.1 at 1e25, matching the paper's approaches 1 and 2
# and its Table 3: the band checked is 20 +- 30 % over 1e19 - 1e25 FLOPs.
TOKENS_BAND = (14.0, 26.0)
TOKENS_BUDGETS = np.geomspace(1e19, 1e25, 13)


@pytest.mark.points(1)
def test_about_20_tokens_per_parameter(impl):
    for law, name in ((support.BESIROGLU, "Besiroglu et al."), (support.HOFFMANN, "Hoffmann et al.")):
        got = np.stack([numbers(v) for v in impl.compute_optimal(TOKENS_BUDGETS, *law)])
        assert_close(
            got,
            np.stack(oracle.compute_optimal(TOKENS_BUDGETS, *law)),
            rtol=1e-8,
            atol=0.0,
            name=f"compute_optimal at {name}'s constants {law_name(law)}, C = 1e19 ... 1e25",
            suspects=mistakes.on("compute_optimal", TOKENS_BUDGETS, *law),
        )
    n_opt, d_opt = (numbers(v) for v in impl.compute_optimal(TOKENS_BUDGETS, *support.BESIROGLU))
    ratio = d_opt / n_opt
    low, high = TOKENS_BAND
    if not np.all((ratio >= low) & (ratio <= high)):
        raise CheckFailure(
            f"D_opt / N_opt at Besiroglu et al.'s constants for C = 1e19 ... 1e25: "
            f"{np.round(ratio, 1).tolist()} tokens per parameter; expected about 20 "
            f"(between {low:g} and {high:g})"
        )


# --- fit_power_law (3 points) -----------------------------------------------------------------


@pytest.mark.points(1)
@settings(max_examples=10)
@given(seed=SEEDS, n=st.integers(6, 40))
def test_power_law_recovers_noise_free_laws(impl, seed, n):
    params = support.random_power_law(seed)
    N, L = support.power_law_runs(params, noise=0.0, n=n)
    assert_close(
        numbers(impl.fit_power_law(N, L)),
        np.array(params),
        rtol=0.05,
        atol=0.0,
        name=f"fit_power_law on {n} noise-free runs of a={params[0]:.4g}, alpha={params[1]:.4f}, "
        f"c={params[2]:.4f}: (a, alpha, c)",
        hint="fit a N^-alpha + c itself, by least squares on log L, from a few starting points",
        suspects=mistakes.on("fit_power_law", N, L),
    )


@pytest.mark.points(2)
@settings(max_examples=6)
@given(seed=SEEDS, paper=st.booleans())
def test_power_law_reaches_the_least_squares_minimum(impl, seed, paper):
    params = support.POWER_LAW if paper else support.random_power_law(seed)
    N, L = support.power_law_runs(params, seed=seed)
    name = (
        f"fit_power_law on 40 runs of a={params[0]:.4g}, alpha={params[1]:.4f}, c={params[2]:.4f} "
        "with 1 % noise"
    )
    got = numbers(impl.fit_power_law(N, L))
    suspects = mistakes.on("fit_power_law", N, L)
    (best, best_value) = oracle.fit_power_law(N, L)
    value = oracle.power_law_objective(got, N, L)
    if not value <= best_value * (1 + 1e-6) + 1e-12:
        diagnosis = suspects.first_match(lambda v: np.allclose(got, v, rtol=1e-3, atol=0.0))
        raise CheckFailure(
            (f"{diagnosis}\n" if diagnosis else "")
            + f"{name}: your (a, alpha, c) = {np.round(got, 5).tolist()} leaves a sum of squared log "
            f"residuals of {value:.6g}; the least-squares minimum is {best_value:.6g} at "
            f"{np.round(best, 5).tolist()}",
            hint="minimise sum (log(a N^-alpha + c) - log L)^2 from several starts and keep the best",
        )
    if value >= best_value * (1 - 1e-6):  # the same minimum (not a better one than the oracle's)
        assert_close(
            got, np.array(best), rtol=0.05, atol=0.0, name=f"{name}: (a, alpha, c) against the minimum"
        )
    if paper:
        assert_close(
            got[1:], np.array(params[1:]), rtol=0.05, atol=0.0, name=f"{name}: (alpha, c) against the truth"
        )


# --- speed (1 point) ---------------------------------------------------------------------------
# Before the other fit_chinchilla tests: a slow fit stops here, at its first lost point.
# "A fit takes at most 2 s" on a machine where the graders' own fit takes at most 0.5 s:
# the limit is max(2 s, 4x that fit's time in the same run), so a busy machine, which slows
# both, does not fail a learner (in-process, times are wall times; sandboxed, CPU times
# read by the OS). One call first: at 1.5x the limit or more it fails at once, at half the
# limit or less it passes; else the median of three calls decides. Measured here (2 busy
# cores, CPU times): the reference 0.2-0.4 s, the graders' fit 0.25-0.6 s, a loop of
# L-BFGS over 576 grid points 8-10 s.
BUDGET_S = 2.0
BUDGET_OVER_ORACLE = 4.0
CLEARLY_OVER, CLEARLY_UNDER = 1.5, 0.5


def oracle_fit(N, D, L):
    return oracle.fit_chinchilla(N, D, L, refined=2)[0]


def same_fit(got, want):
    assert_close(numbers(got), np.array(want), rtol=0.05, atol=0.0, name="fit_chinchilla's answer")


@pytest.mark.points(1)
@pytest.mark.speed
def test_fit_chinchilla_within_2_seconds(impl, record_metric):
    def make(i):  # fresh runs of a fresh law for every timed call
        return support.sweep(support.random_law(7000 + i), seed=7000 + i)

    def timed(repeats):
        speed = compare_speed(
            impl.fit_chinchilla, oracle_fit, make, check=same_fit, repeats=repeats, warmup=0, number=1
        )
        return speed, max(BUDGET_S, BUDGET_OVER_ORACLE * speed.baseline_s)

    speed, limit = timed(1)
    if CLEARLY_UNDER * limit < speed.candidate_s <= CLEARLY_OVER * limit:
        speed, limit = timed(3)
    record_metric("speed_ratio", speed.ratio)
    if not speed.candidate_s <= limit:
        calls = "1 call" if speed.repeats == 1 else "median of 3 calls"
        raise CheckFailure(
            f"too slow: fit_chinchilla on 400 runs took {speed.candidate_s:.2f} s ({calls} on fresh runs); "
            f"the limit is {limit:.2f} s (2 s, or 4x the graders' own fit, {speed.baseline_s:.2f} s here)",
            hint="give the optimiser the gradient, compute the objective for all runs at once (no Python "
            "loop), and run the optimiser only from the best few grid points",
        )


# --- fit_chinchilla (5 points) -----------------------------------------------------------------


def fitted(impl, N, D, L, name):
    """The learner's (E, A, B, alpha, beta) as float64, after checking no term of it is dead."""
    params = numbers(impl.fit_chinchilla(N, D, L))
    check_equal(params.shape, (5,), name=f"{name}: number of values returned")
    dead = support.dead_terms(params, N, D, L)
    if dead:
        raise mistakes.failure(
            "single_start",
            f"{name}: your fit {law_name(params)} has {' and '.join(dead)} below 1/1000 of the smallest loss "
            f"at every run",
        )
    return params


@pytest.mark.points(2)
@settings(max_examples=3, phases=NO_SHRINK)
@given(law=support.laws)
@example(law=support.HOFFMANN)
def test_chinchilla_recovers_noise_free_laws(impl, law):
    N, D, L = support.sweep(law, noise=0.0, diverged=0.0, size=12)
    name = f"fit_chinchilla on 144 noise-free runs of {law_name(law)}"
    assert_close(
        fitted(impl, N, D, L, name),
        np.array(law),
        rtol=0.05,
        atol=0.0,
        name=f"{name}: (E, A, B, alpha, beta)",
        hint="the objective is zero at the true constants: start from a grid and keep the best minimum",
    )


@pytest.mark.points(2)
def test_chinchilla_with_noise_and_diverged_runs(impl):
    for law, seed, name in (
        (support.HOFFMANN, 1, "Hoffmann et al."),
        (support.BESIROGLU, 2, "Besiroglu et al."),
    ):
        N, D, L = support.sweep(law, seed=seed)
        what = f"fit_chinchilla on the sweep of {name}'s law (seed {seed}: 1 % noise, 20 diverged runs)"
        params = fitted(impl, N, D, L, what)
        assert_close(
            support.chinchilla_loss(N, D, *params),
            support.chinchilla_loss(N, D, *law),
            rtol=0.015,
            atol=0.0,
            name=f"{what}: your law's loss at each run, against the noise-free law (within 1.5 %)",
            hint="minimise the Huber loss (delta = 1e-3) of log L_hat - log L: squared errors let the "
            "diverged runs pull the fit",
            suspects=mistakes.on("fit_chinchilla (losses at the runs)", N, D, L),
        )
        assert_close(
            params[[0, 3, 4]],
            np.array(law)[[0, 3, 4]],
            rtol=0.05,
            atol=0.0,
            name=f"{what}: (E, alpha, beta) against the truth",
        )


@pytest.mark.points(1)
@settings(max_examples=2, phases=NO_SHRINK)
@given(law=support.laws, seed=SEEDS)
def test_chinchilla_reaches_the_huber_minimum(impl, law, seed):
    N, D, L = support.sweep(law, seed=seed)
    name = f"fit_chinchilla on the sweep of {law_name(law)} (seed {seed})"
    got = fitted(impl, N, D, L, name)
    best, best_value = oracle.fit_chinchilla(N, D, L)
    value = oracle.huber_objective(got, N, D, L)
    if not value <= best_value * (1 + 1e-4) + 1e-12:
        raise CheckFailure(
            f"{name}: your fit {law_name(got)} has a Huber objective of {value:.8g}; its minimum is "
            f"{best_value:.8g}, at {law_name(best)}",
            hint="start from more points of the grid (or refine more of the best ones), and let the "
            "optimiser converge (gradient given, default tolerances)",
        )
    if value >= best_value * (1 - 1e-6):  # the same minimum: all five constants within 5 %
        assert_close(
            got,
            np.array(best),
            rtol=0.05,
            atol=0.0,
            name=f"{name}: (E, A, B, alpha, beta) against the minimum",
        )
