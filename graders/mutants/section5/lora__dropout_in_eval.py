"""Mutant: the branch uses F.dropout(x, p), whose training argument defaults to True.

Misconception: dropout switches itself off in eval mode. The nn.Dropout module does
(it reads self.training); the function does not unless told training=self.training,
so inference stays random and every output is noisy.
"""

import torch.nn.functional as F


class LoRALinear(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__(base, r, alpha, dropout)
        self.p = dropout

    def forward(self, x):
        out = self.base(x)
        if self.merged:
            return out
        return out + (F.dropout(x, self.p) @ self.lora_A.T @ self.lora_B.T) * self.scaling
