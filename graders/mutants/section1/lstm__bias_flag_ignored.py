"""Mutant: both biases are created (and added) whatever the bias flag says.

Misconception: the bias flag is a detail. torch's cell with bias=False has no
bias parameters at all, so its state dict (and a model that loads it) has none.
"""

REFERENCE_PATCH = [
    ("        if bias:\n            self.bias_ih", "        if True:\n            self.bias_ih"),
]
