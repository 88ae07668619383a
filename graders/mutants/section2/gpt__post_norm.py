"""Mutant: post-norm block, norm(x + branch(x)), as in the original transformer.

Misconception: the 2017 paper's layout is the transformer. GPT-2 onwards (and Llama)
normalise the branch input and leave the residual stream alone: x + branch(norm(x)).
"""


class Block(Block):
    def forward(self, x):
        t = x.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        x = self.norm1(x + self.attn(x, mask=causal))
        return self.norm2(x + self.mlp(x))
