"""Mutant: __rtruediv__ computes self / other.

Misconception: the reflected operator gets its operands in the same order.
For 2 / v Python calls v.__rtruediv__(2), which must return 2 / v, not v / 2.
"""


class Value(Value):
    def __rtruediv__(self, other):
        return self / other
