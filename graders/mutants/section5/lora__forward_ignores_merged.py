"""Mutant: forward adds the LoRA branch even after merge().

Misconception: merge() is a separate export step that forward need not know
about. Once the update lives in base.weight, adding the branch again counts
it twice.
"""


class LoRALinear(LoRALinear):
    def forward(self, x):
        return self.base(x) + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling
