"""Mutant: merge() and unmerge() add and subtract B @ A without the alpha / r scale.

Misconception: the scale is part of the forward pass only. The merged weight
must reproduce the forward pass, so it is W + (alpha / r) B A.
"""


class LoRALinear(LoRALinear):
    @torch.no_grad()
    def merge(self):
        if not self.merged:
            self.base.weight.add_(self.lora_B @ self.lora_A)
            self.merged = True

    @torch.no_grad()
    def unmerge(self):
        if self.merged:
            self.base.weight.sub_(self.lora_B @ self.lora_A)
            self.merged = False
