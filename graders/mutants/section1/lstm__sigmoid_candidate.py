"""Mutant: sigmoid on all four gates, the candidate g included.

Misconception: "the gates are sigmoids". i, f and o are; g holds the values to
write, which must be able to be negative: tanh.
"""

REFERENCE_PATCH = [
    (
        "torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)",
        "torch.sigmoid(f), torch.sigmoid(g), torch.sigmoid(o)",
    ),
]
