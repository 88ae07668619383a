"""Mutant: unmerge() subtracts the update without checking the merged flag.

Misconception: unmerge() is only ever called after merge(). A second unmerge(), or
one on a fresh layer (an "unmerge all adapters" pass over a model), subtracts an
update that was never added and corrupts the pre-trained weight.
"""


class LoRALinear(LoRALinear):
    @torch.no_grad()
    def unmerge(self):
        self.base.weight.sub_(self.delta_weight())
        self.merged = False
