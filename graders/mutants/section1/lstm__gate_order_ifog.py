"""Mutant: the stacked gate rows read in the order i, f, o, g.

Misconception: the order of some write-ups and hand-written LSTMs (Karpathy's
"IFOG"), with the output gate third and the candidate last. torch stacks the
rows i, f, g, o; with copied weights the order must match.
"""

REFERENCE_PATCH = [
    ("        i, f, g, o = gates.chunk(4, dim=1)", "        i, f, o, g = gates.chunk(4, dim=1)"),
]
