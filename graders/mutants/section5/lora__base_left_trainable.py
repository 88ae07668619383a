"""Mutant: LoRALinear never freezes the wrapped nn.Linear.

Misconception: adding A and B is enough; but the base weight still has
requires_grad=True, so an optimiser over model.parameters() fine-tunes the
whole matrix and LoRA saves nothing. apply_lora freezes the model and then
wraps, so the wrapped bases come out trainable there too.
"""


class LoRALinear(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__(base, r, alpha, dropout)
        for p in self.base.parameters():
            p.requires_grad_(True)
