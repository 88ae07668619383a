"""Mutant: tanh's derivative written as 1 - x**2 with the input x.

Misconception: the formula 1 - tanh(x)**2 is read as 1 - x**2; the derivative
must use the output y = tanh(x).
"""


class Value(Value):
    def tanh(self):
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1.0 - self.data**2) * out.grad

        out._backward = _backward
        return out
