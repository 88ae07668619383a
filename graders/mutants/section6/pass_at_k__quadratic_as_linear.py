"""Mutant: quadratic weights computed as |i - j|, the same as the linear ones.

Misconception: "quadratic" read as "weighted by distance" and written with abs(): the
square is what makes a 2-point miss cost 4 times a 1-point miss, and it is lost.
"""


def _disagreement_weights(n_labels, weights):
    position = np.arange(n_labels)
    distance = np.abs(position[:, None] - position[None, :]).astype(np.float64)
    if weights is None:
        return (distance > 0).astype(np.float64)
    if weights in ("linear", "quadratic"):
        return distance
    raise ValueError(f"unknown weights {weights!r}")
