"""Mutant: only bias_ih is added; bias_hh is registered but never used.

Misconception: one bias per gate is enough, so the second is ignored. torch
adds both (they are redundant in theory, but trained weights depend on both).
"""

REFERENCE_PATCH = [
    ("            gates = gates + (self.bias_ih + self.bias_hh)", "            gates = gates + self.bias_ih"),
]
