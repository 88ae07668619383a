"""Mutant: c' = f * c + g (the input gate is computed but never applied).

Misconception: the candidate g is written to the cell as is; the input gate
decides how much of it to write.
"""

REFERENCE_PATCH = [
    ("        c_next = f * c + i * g", "        c_next = f * c + g"),
]
