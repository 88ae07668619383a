"""Mutant: merge() does not check the merged flag.

Misconception: merge() is idempotent by nature. It adds to the weight in place,
so a second call (a second export, a callback that merges again) doubles the
update.
"""


class LoRALinear(LoRALinear):
    @torch.no_grad()
    def merge(self):
        self.base.weight.add_(self.delta_weight())
        self.merged = True
