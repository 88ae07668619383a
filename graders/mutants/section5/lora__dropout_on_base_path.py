"""Mutant: dropout is applied to the input before both paths.

Misconception: dropout "on the layer input". The frozen base must see x as
given; only the new branch is regularised. Here the pre-trained path is
perturbed during training, and a fresh adapter no longer equals the base.
"""


class LoRALinear(LoRALinear):
    def forward(self, x):
        x = self.dropout(x)
        out = self.base(x)
        if self.merged:
            return out
        return out + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling
