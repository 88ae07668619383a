"""Mutant: h' = o * c' (no tanh on the cell state).

Misconception: the output gate alone bounds h. The cell state can grow beyond
[-1, 1]; tanh squashes it before the gate.
"""

REFERENCE_PATCH = [
    ("        h_next = o * torch.tanh(c_next)", "        h_next = o * c_next"),
]
