"""Exercise 1.2a — scalar reverse-mode autograd (a tiny micrograd).

Replace every ``raise NotImplementedError`` with your implementation, then run

    pytest exercises/section1/test_scalar_autograd.py      (or: llmkit check 1.2a)

Plain Python only: the ``math`` module is all you need (no torch, no numpy).

The idea. Every arithmetic operation on ``Value`` objects returns a new
``Value`` that remembers its inputs (its *children*) and how to pass a
gradient back to them. After building an expression such as

    a = Value(2.0); b = Value(-3.0)
    c = a * b + a.tanh()          # c is the root of a small graph
    c.backward()                  # fills a.grad = dc/da and b.grad = dc/db

``backward()`` sets ``c.grad = 1`` and visits the graph from the root to the
leaves in *reverse topological order* (a node only after every node that uses
it), calling each node's local backward rule (the chain rule):
``child.grad += local_derivative * node.grad``.

Two details decide whether it is right:

* ``+=``, never ``=``: a node used twice (``a * a``, or ``a`` feeding two
  branches) receives a gradient contribution from every use.
* the order: a node may only pass its gradient on once it has received *all*
  of its own; a plain depth-first walk from the root is not enough when
  branches share nodes. Build the topological order first.
"""

from __future__ import annotations

import math  # noqa: F401  (math.exp, math.log, math.tanh)


class Value:
    """A scalar (``float``) node in a computation graph.

    Attributes (the tests read them):
        data: float — the value.
        grad: float — d(root)/d(this node) after ``root.backward()``; 0.0 before.

    ``Value(data)`` creates a leaf; ``data`` may be an int or a float and is
    stored as a float. Operations must accept a plain number on either side,
    e.g. ``2 * v``, ``v * 2``, ``2 - v``, ``v - 2``, ``2 / v``, ``v / 2``,
    ``1 + v`` (Python calls ``__radd__``, ``__rsub__``, ``__rmul__``,
    ``__rtruediv__`` when the number is on the left).

    Operations (each returns a new Value; the inputs are not changed):
        v + w, v - w, v * w, v / w     with w a Value or a number, on either side
        -v
        v ** n                         n a number (int or float), e.g. v ** 2, v ** -1, v ** 0.5
        v.exp(), v.log()               natural log; called only on positive values
        v.tanh()
        v.relu()                       max(v, 0); its gradient at exactly 0 is 0 (as in torch)
        v.sigmoid()                    1 / (1 + exp(-v))

    Local derivatives you will need (y is the output):
        exp: y          log: 1/x        tanh: 1 - y**2        sigmoid: y * (1 - y)
        x ** n: n * x ** (n - 1)        relu: 1 if x > 0 else 0
    """

    def __init__(self, data: float, _children: tuple[Value, ...] = (), _op: str = ""):
        raise NotImplementedError

    def __add__(self, other) -> Value:
        raise NotImplementedError

    def __radd__(self, other) -> Value:
        raise NotImplementedError

    def __mul__(self, other) -> Value:
        raise NotImplementedError

    def __rmul__(self, other) -> Value:
        raise NotImplementedError

    def __pow__(self, exponent: float) -> Value:
        raise NotImplementedError

    def __neg__(self) -> Value:
        raise NotImplementedError

    def __sub__(self, other) -> Value:
        raise NotImplementedError

    def __rsub__(self, other) -> Value:
        """``other - self``, where ``other`` is a plain number."""
        raise NotImplementedError

    def __truediv__(self, other) -> Value:
        raise NotImplementedError

    def __rtruediv__(self, other) -> Value:
        """``other / self``, where ``other`` is a plain number."""
        raise NotImplementedError

    def exp(self) -> Value:
        raise NotImplementedError

    def log(self) -> Value:
        raise NotImplementedError

    def tanh(self) -> Value:
        raise NotImplementedError

    def relu(self) -> Value:
        raise NotImplementedError

    def sigmoid(self) -> Value:
        raise NotImplementedError

    def backward(self) -> None:
        """Fill ``.grad`` of every node this one depends on with d(self)/d(node).

        Sets ``self.grad = 1.0``, orders the graph topologically and runs each
        node's backward rule from this node back to the leaves. Leaves start at
        ``grad == 0.0``; a node that appears several times in the graph
        accumulates the gradient of every use. Graphs can be deep (hundreds of
        nodes in a chain): a recursive walk may hit Python's recursion limit
        around 1000 nodes, an explicit stack does not.
        """
        raise NotImplementedError
