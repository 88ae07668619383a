"""Mutant: fit_power_law fits a straight line to log L against log N, and returns c = 0.

Misconception: "power laws are straight lines on log-log axes". Only a pure power law
is; with the irreducible loss c the curve bends towards c, the line's slope is too
shallow, and c is lost altogether.
"""


def fit_power_law(N, L):
    N, L = _positive_arrays("fit_power_law", 3, N=N, L=L)
    slope, intercept = np.polyfit(np.log(N), np.log(L), 1)
    return float(np.exp(intercept)), float(-slope), 0.0
