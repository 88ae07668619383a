"""Mutant: the stacked gate rows read in the order f, i, g, o.

Misconception: any order will do (Colah's post introduces the forget gate
first). torch stacks the rows i, f, g, o; with copied weights the order must match.
"""

REFERENCE_PATCH = [
    ("        i, f, g, o = gates.chunk(4, dim=1)", "        f, i, g, o = gates.chunk(4, dim=1)"),
]
