"""Mutant: global_magnitude_prune prunes each tensor by `amount` on its own.

Misconception: "global" means "applied to every layer". Global pruning ranks all the
weights together: layers of small weights lose more than `amount` of them, layers of
large weights less, which is the point of it.
"""


def global_magnitude_prune(params, amount):
    return {name: magnitude_prune(W, amount) for name, W in params.items()}
