"""Mutant: fit_chinchilla runs L-BFGS once, from a = b = e = 1 and alpha = beta = 1.

Misconception: "a good optimiser finds the minimum from anywhere". From that start
A / N^alpha = e / N is ~1e-6 at every run: its weight in the log-sum-exp, and so its
gradient, is ~0, and the optimiser stops with that term (and B / D^beta) dead.
"""


def fit_chinchilla(N, D, L):
    N, D, L = _positive_arrays("fit_chinchilla", 5, N=N, D=D, L=L)
    x, z, y = np.log(N), np.log(D), np.log(L)
    result = minimize(_chinchilla_objective, np.ones(5), args=(x, z, y), jac=True, method="L-BFGS-B")
    a, b, e, alpha, beta = result.x
    return float(np.exp(e)), float(np.exp(a)), float(np.exp(b)), float(alpha), float(beta)
