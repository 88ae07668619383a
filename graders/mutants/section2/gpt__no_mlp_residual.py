"""Mutant: the MLP's output replaces the stream instead of being added to it.

Misconception: only attention needs a residual connection. Both sub-layers add to the
residual stream: x = x + mlp(norm2(x)).
"""


class Block(Block):
    def forward(self, x):
        t = x.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        x = x + self.attn(self.norm1(x), mask=causal)
        return self.mlp(self.norm2(x))
