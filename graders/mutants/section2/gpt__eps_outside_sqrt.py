"""Mutant: eps is added to the root mean square, outside the square root.

Misconception: "eps just avoids a division by zero, where it goes does not matter".
nn.RMSNorm computes rsqrt(mean(x**2) + eps); for small activations or a large eps the
two differ a lot.
"""


class RMSNorm(RMSNorm):
    def forward(self, x):
        return x / (x.pow(2).mean(dim=-1, keepdim=True).sqrt() + self.eps) * self.weight
