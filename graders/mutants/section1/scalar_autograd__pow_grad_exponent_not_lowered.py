"""Mutant: d(x**n)/dx written as n * x**n.

Misconception: forgetting to lower the exponent by one in the power rule.
"""


class Value(Value):
    def __pow__(self, exponent):
        out = Value(self.data**exponent, (self,), f"**{exponent}")

        def _backward():
            self.grad += exponent * self.data**exponent * out.grad

        out._backward = _backward
        return out
