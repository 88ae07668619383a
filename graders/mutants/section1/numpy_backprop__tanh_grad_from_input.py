"""Mutant: tanh's backward uses 1 - x**2 with the input x.

Misconception: reading 1 - tanh(x)**2 as 1 - x**2; the derivative needs the output.
"""


class Tanh(Tanh):
    def forward(self, x):
        self._x = x
        return super().forward(x)

    def backward(self, grad_out):
        return grad_out * (1.0 - self._x**2)
