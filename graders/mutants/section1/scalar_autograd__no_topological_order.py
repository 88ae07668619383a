"""Mutant: backward() walks depth-first from the root and calls each node's
_backward as soon as it is reached, without building a topological order.

Misconception: "from the output back to the inputs" is any walk from the root.
When branches share a node, it passes its gradient on before all of it arrived.
"""


class Value(Value):
    def backward(self):
        self.grad = 1.0
        stack, seen = [self], {id(self)}
        while stack:
            node = stack.pop()
            node._backward()
            for child in node._prev:
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append(child)
