"""Mutant: the causal mask is tril(-1): position i sees 0..i-1 but not itself.

Misconception: "a token must not see itself when predicting the next one". The target
at position i is token i + 1, so token i is allowed context; hiding it removes the most
useful token (and leaves position 0 seeing nothing).
"""


class Block(Block):
    def forward(self, x):
        t = x.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril(-1)
        x = x + self.attn(self.norm1(x), mask=causal)
        return x + self.mlp(self.norm2(x))
