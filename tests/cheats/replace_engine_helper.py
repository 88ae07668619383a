# target: section1/scalar_autograd.py
"""A Value with only a forward pass (backward() does nothing) that, at import, replaces
whatever grading machinery it can reach in its own process: the scalar-autograd program
interpreter (``evaluate`` of the exercise's support module, which once ran in the worker),
the worker's engine-helper operations (``Server.op_engine``, ``ENGINE``), and every
llmkit function in ``sys.modules`` and in ``__main__`` that runs a graph or computes,
reads or compares gradients. Its interpreter computes the gradients with torch autograd
and writes them into the leaves' ``.grad``: had any engine helper still run beside the
learner's code, this would score full points. Its honest work, the forward pass, earns
only the test that reads ``.data`` alone (test_inputs_are_not_changed_and_ints_work)."""

import importlib
import math
import sys


class Value:
    def __init__(self, data, _children=(), _op=""):
        self.data = float(data)
        self.grad = 0.0

    @staticmethod
    def _of(other):
        return other if isinstance(other, Value) else Value(other)

    def __add__(self, other):
        return Value(self.data + Value._of(other).data)

    def __mul__(self, other):
        return Value(self.data * Value._of(other).data)

    def __pow__(self, exponent):
        return Value(self.data**exponent)

    def __neg__(self):
        return Value(-self.data)

    def __sub__(self, other):
        return Value(self.data - Value._of(other).data)

    def __truediv__(self, other):
        return Value(self.data / Value._of(other).data)

    def __rsub__(self, other):
        return Value(other - self.data)

    def __rtruediv__(self, other):
        return Value(other / self.data)

    __radd__ = __add__
    __rmul__ = __mul__

    def exp(self):
        return Value(math.exp(self.data))

    def log(self):
        return Value(math.log(self.data))

    def tanh(self):
        return Value(math.tanh(self.data))

    def relu(self):
        return Value(max(self.data, 0.0))

    def sigmoid(self):
        return Value(1.0 / (1.0 + math.exp(-self.data)))

    def backward(self):
        pass  # no backward pass: the gradients are supposed to come from the machinery below


# --- the cheat: replace the grading machinery ------------------------------------------------

_BINARY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}


def _apply(step, nodes):
    op = step[0]
    if op == "neg":
        return -nodes[step[1]]
    if op == "pow":
        return nodes[step[1]] ** step[2]
    if op in _BINARY:
        if step[1] == "const":
            return _BINARY[op](step[2], nodes[step[3]])
        if len(step) == 4:
            return _BINARY[op](nodes[step[1]], step[3])
        return _BINARY[op](nodes[step[1]], nodes[step[2]])
    return getattr(nodes[step[1]], op)()


def cheating_evaluate(leaves, steps):
    """Run the graph with torch autograd; every node's backward() writes torch's gradients."""
    import torch

    values = [v.data if isinstance(v, Value) else float(v) for v in leaves]
    tensors = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in values]
    computed = list(tensors)
    for step in steps:
        computed.append(_apply(step, computed))
    nodes = [v if isinstance(v, Value) else Value(v) for v in leaves]
    for t in computed[len(leaves) :]:
        nodes.append(Value(float(t.detach())))
    for node, t in zip(nodes, computed):

        def backward(t=t):
            grads = torch.autograd.grad(t, tensors, allow_unused=True, retain_graph=True)
            for leaf, g in zip(nodes, grads):
                leaf.grad = 0.0 if g is None else float(g)

        node.backward = backward
    return nodes


def _lie(*args, **kwargs):
    return None


def _replace_everything():
    try:  # the support module the grader's interpreter lives in
        importlib.import_module("llmkit.support").load_support("1.2a")
    except BaseException:  # noqa: BLE001 - out of the sandbox's reach: keep trying elsewhere
        pass
    for name, module in list(sys.modules.items()):
        if not (name.startswith("llmkit") or name == "__main__") or module is None:
            continue
        for attr in ("evaluate", "check_graph"):
            if hasattr(module, attr):
                setattr(module, attr, cheating_evaluate)
        for attr in ("value_and_grad", "torch_values_and_grads", "assert_close", "check_gradients", "close"):
            if hasattr(module, attr):
                setattr(module, attr, _lie)
        engine = getattr(module, "ENGINE", None)
        if isinstance(engine, dict):
            engine["value_and_grad"] = _lie
            engine["evaluate"] = cheating_evaluate
        server = getattr(module, "Server", None)
        if isinstance(server, type):
            server.op_engine = lambda self, target, args, kwargs: cheating_evaluate(*args, **kwargs)


_replace_everything()
