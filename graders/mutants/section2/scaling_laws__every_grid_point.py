"""Mutant: fit_chinchilla runs L-BFGS from every point of a 3 x 3 x 4 x 4 x 4 grid (576 starts).

Misconception: "the paper ran the optimiser from every grid point, so I will too, on a
coarser grid". Each run costs 50-100 objective evaluations; hundreds of them take
seconds. Evaluating the objective at every grid point at once and refining the best few
finds the same minimum in a fraction of the time.
"""


def fit_chinchilla(N, D, L):
    N, D, L = _positive_arrays("fit_chinchilla", 5, N=N, D=D, L=L)
    x, z, y = np.log(N), np.log(D), np.log(L)
    ab, e, exponents = (0.0, 10.0, 20.0), (-1.0, -0.3, 0.3, 1.0), (0.0, 0.5, 1.0, 1.5)
    best = None
    for start in itertools.product(ab, ab, e, exponents, exponents):
        result = minimize(_chinchilla_objective, np.array(start), args=(x, z, y), jac=True, method="L-BFGS-B")
        if best is None or result.fun < best.fun:
            best = result
    a, b, e, alpha, beta = best.x
    return float(np.exp(e)), float(np.exp(a)), float(np.exp(b)), float(alpha), float(beta)
