"""Mutant: the adapter is scaled by alpha instead of alpha / r.

Misconception: alpha is "the LoRA learning-rate multiplier" on its own. The
paper scales by alpha / r so that changing the rank does not change the size
of the update; with alpha alone a rank-16 adapter steps 16x harder.
"""


class LoRALinear(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__(base, r, alpha, dropout)
        self.scaling = alpha
