"""Mutant: lora_A initialised with nn.init.kaiming_uniform_(A) and the default a=0.

Misconception: "Kaiming-uniform" is one init. The a argument sets the gain:
nn.Linear (and LoRA) use a=sqrt(5), bound 1/sqrt(in); a=0 (the ReLU gain)
gives a bound sqrt(6) times larger and larger early updates.
"""


class LoRALinear(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__(base, r, alpha, dropout)
        nn.init.kaiming_uniform_(self.lora_A)
