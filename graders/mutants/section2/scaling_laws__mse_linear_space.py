"""Mutant: fit_chinchilla minimises the squared error of L itself, not the Huber loss of log L.

Misconception: "a fit is a fit: least squares on the loss values". Squared errors of L
let the few diverged runs (25-100 % above the law) pull the whole surface up; the
paper's Huber loss on log residuals treats a big miss almost like an absolute error.
"""


def _squared_error(p, x, z, l_obs):
    a, b, e, alpha, beta = p
    w0, w1, w2 = np.exp(a - alpha * x), np.exp(b - beta * z), np.exp(e)
    r = w0 + w1 + w2 - l_obs
    g = 2.0 * r
    g0, g1 = g * w0, g * w1
    return float(r @ r), np.array([g0.sum(), g1.sum(), (g * w2).sum(), -(g0 @ x), -(g1 @ z)])


def fit_chinchilla(N, D, L):
    N, D, L = _positive_arrays("fit_chinchilla", 5, N=N, D=D, L=L)
    x, z = np.log(N), np.log(D)
    on_grid = np.array([_squared_error(p, x, z, L)[0] for p in GRID])
    best = None
    for start in GRID[np.argsort(on_grid)[:REFINED]]:
        result = minimize(_squared_error, start, args=(x, z, L), jac=True, method="L-BFGS-B")
        if best is None or result.fun < best.fun:
            best = result
    a, b, e, alpha, beta = best.x
    return float(np.exp(e)), float(np.exp(a)), float(np.exp(b)), float(alpha), float(beta)
