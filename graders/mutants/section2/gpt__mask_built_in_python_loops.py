"""Mutant: the causal mask is filled element by element in Python on every forward.

Misconception: the mask is "just bookkeeping", so a double loop is fine. T * T / 2
Python assignments per block per forward cost more than the block's whole arithmetic.
"""


class Block(Block):
    def forward(self, x):
        t = x.shape[1]
        causal = torch.zeros(t, t, dtype=torch.bool, device=x.device)
        for i in range(t):
            for j in range(i + 1):
                causal[i, j] = True
        x = x + self.attn(self.norm1(x), mask=causal)
        return x + self.mlp(self.norm2(x))
