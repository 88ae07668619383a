"""Mutant: SwiGLU applies silu to w3's branch and multiplies by w1's linear output.

Misconception: the two up-projections look interchangeable. They are not once weights
are named: Llama's convention is w2(silu(w1 x) * w3 x), and loading a checkpoint into
the swapped layout gives another function.
"""


class SwiGLU(SwiGLU):
    def forward(self, x):
        return self.w2(self.w1(x) * F.silu(self.w3(x)))
