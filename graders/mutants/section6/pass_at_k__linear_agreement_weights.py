"""Mutant: linear kappa with the agreement weights 1 - |i - j| / (K - 1).

Misconception: textbooks give weighted kappa two ways, with agreement weights (1 on the
diagonal) or with disagreement weights (0 on the diagonal). This mixes them: agreement
weights plugged into 1 - sum(w * observed) / sum(w * expected), which wants |i - j|.
"""


def _disagreement_weights(n_labels, weights):
    position = np.arange(n_labels)
    distance = np.abs(position[:, None] - position[None, :]).astype(np.float64)
    if weights is None:
        return (distance > 0).astype(np.float64)
    if weights == "linear":
        return 1.0 - distance / (n_labels - 1)
    if weights == "quadratic":
        return distance**2
    raise ValueError(f"unknown weights {weights!r}")
