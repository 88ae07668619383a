"""Mutant: RMSNorm centres x (subtracts the mean) before dividing by the root mean square.

Misconception: RMSNorm is "LayerNorm without the bias"; the learner keeps LayerNorm's
centring. RMSNorm only rescales: x / sqrt(mean(x**2) + eps) * weight.
"""


class RMSNorm(RMSNorm):
    def forward(self, x):
        x = x - x.mean(dim=-1, keepdim=True)
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight
