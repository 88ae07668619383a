"""Mutant: the chance agreement of kappa from rater a's label frequencies alone.

Misconception: "chance agreement is the probability that two random labels match", with
both labels drawn from a's frequencies: p_e = sum_i p_a(i)**2. Kappa compares the two
raters, so chance pairs a label drawn like a's with one drawn like b's:
p_e = sum_i p_a(i) * p_b(i). The mistake also makes kappa(a, b) != kappa(b, a).
"""


def cohen_kappa(a, b, labels=None, weights=None):
    a, b = list(a), list(b)
    labels = _label_order(a, b, labels)
    observed = _counts(a, b, labels).astype(np.float64)
    rows = observed.sum(axis=1)
    expected = np.outer(rows, rows) / observed.sum()
    w = _disagreement_weights(len(labels), weights)
    return float(1.0 - (w * observed).sum() / (w * expected).sum())
