"""Mutant: micrograd's recursive topological sort.

Correct on small graphs, but each node in a chain costs a Python stack frame:
a chain of a few thousand nodes raises RecursionError.
"""


class Value(Value):
    def backward(self):
        topo, visited = [], set()

        def build_topo(v):
            if id(v) not in visited:
                visited.add(id(v))
                for child in v._prev:
                    build_topo(child)
                topo.append(v)

        build_topo(self)
        self.grad = 1.0
        for node in reversed(topo):
            node._backward()
