"""Mutant: lora_B gets the same Kaiming-uniform init as lora_A instead of zeros.

Misconception: every weight needs a random init. With B random, B @ A is not
zero, so the "adapted" model no longer starts as the pre-trained one.
"""


class LoRALinear(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__(base, r, alpha, dropout)
        nn.init.kaiming_uniform_(self.lora_B, a=math.sqrt(5))
