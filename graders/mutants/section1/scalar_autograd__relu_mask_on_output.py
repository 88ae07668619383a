"""Mutant: relu's gradient passes where the output is >= 0.

Misconception: the mask can be read from the output; but relu's output is
always >= 0, so the gradient flows even where the input was negative.
"""


class Value(Value):
    def relu(self):
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward():
            self.grad += (1.0 if out.data >= 0 else 0.0) * out.grad

        out._backward = _backward
        return out
