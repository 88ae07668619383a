"""Public tests for exercise 1.2a (scalar autograd). Run: pytest exercises/section1

Each test builds small expression graphs from your Values and from torch float64
tensors, and compares every node's value and every leaf's gradient with torch's
autograd. Values come at random (a few examples each): negative inputs, numbers on
either side of every operator, nodes used twice, shared branches, random graphs and
a chain thousands of nodes deep. When a check fails it says which known mistake your
output looks like. The hidden graders draw many more graphs.
"""

import pytest
from hypothesis import given, settings

from llmkit.testing import SEEDS, CheckFailure, Draw, attributes, load_support

pytestmark = pytest.mark.exercise("1.2a")
support = load_support("1.2a")
check_graph = support.check_graph


def test_add_and_multiply(impl):
    # n2 = a * b, n3 = n2 + a
    check_graph(impl, [2.0, -3.0], [("*", 0, 1), ("+", 2, 0)], hint="d(a*b)/da = b; d(a+b)/da = 1")


@settings(max_examples=5)
@given(seed=SEEDS)
def test_unary_operations(impl, seed):
    x = abs(float(Draw(seed).tensor(1, scale=1.5)[0])) + 0.05
    for op in support.UNARY:
        for value in (x,) if op == "log" else (x, -x):
            check_graph(
                impl, [value], [(op, 0)], hint=f"check the local derivative of {op} (Value docstring)"
            )


@settings(max_examples=5)
@given(seed=SEEDS)
def test_powers(impl, seed):
    x = abs(float(Draw(seed).tensor(1)[0])) + 0.2
    for exponent in (2, 3, -1, -2, 0.5, 1.5, 2.5):
        for base in (x, -x) if exponent == int(exponent) else (x,):
            check_graph(impl, [base], [("pow", 0, exponent)], hint="d(x**n)/dx = n * x**(n - 1), n a number")


@settings(max_examples=6)
@given(c=support.CONSTANTS, seed=SEEDS)
def test_constants_on_either_side(impl, c, seed):
    a, b = (float(v) for v in Draw(seed).tensor(2, scale=2.0))
    a = a if abs(a) > 0.2 else a + 1.0
    for op in support.BINARY:
        for const_step in ((op, "const", c, 0), (op, 0, "const", c)):
            # the constant's result is multiplied by another leaf, so its gradient matters too
            check_graph(
                impl,
                [a, b],
                [const_step, ("*", 2, 1)],
                hint="c - v calls v.__rsub__(c) and c / v calls v.__rtruediv__(c): the number is the "
                "left operand; v - c and v / c with a plain number c work through __sub__ and __truediv__",
            )


@settings(max_examples=5)
@given(seed=SEEDS)
def test_a_node_used_twice(impl, seed):
    x, y = (float(v) for v in Draw(seed).tensor(2))
    for steps in (
        [("*", 0, 0)],  # x * x: its gradient is 2x, not x
        [("+", 0, 0)],  # x + x
        [("*", 0, 0), ("+", 2, 0)],  # x * x + x
        [("*", 0, 1), ("+", 2, 2)],  # a = x * y; a + a
    ):
        check_graph(impl, [x, y], steps, hint="each use of a node adds its share to the node's gradient")


@settings(max_examples=4)
@given(seed=SEEDS)
def test_shared_branches(impl, seed):
    x, y = (float(v) * 0.8 for v in Draw(seed).tensor(2))
    for steps in (
        [("tanh", 0), ("*", 0, "const", 2.0), ("*", 2, 3), ("+", 4, 2)],  # b = tanh(x), c = 2x; b * c + b
        [("*", 0, 1), ("sigmoid", 2), ("exp", 2), ("*", 3, 4), ("-", 5, 2), ("/", 6, "const", 2)],
        [("tanh", 0), ("*", 2, 1), ("+", 3, 2), ("*", 4, 3)],
    ):
        check_graph(
            impl,
            [x, y],
            steps,
            hint="a node used by several others must receive all of their shares before it passes its "
            "gradient on: run the rules in reverse topological order",
        )


@settings(max_examples=10)
@given(graph=support.graphs(max_leaves=3, max_steps=12))
def test_random_graphs_match_torch(impl, graph):
    leaves, steps = graph
    check_graph(
        impl, leaves, steps, hint="find the first node whose value or gradient is wrong in the listing"
    )


def test_deep_chain(impl, draw):
    # h = tanh(h * w + x), 1000 times: a path of 3000 nodes from the root to the first h
    leaves, steps = support.rnn_chain(draw.seed, 1000)
    check_graph(impl, leaves, steps, hint="a chain of 3000 operations that reuses x and w at every step")


def test_backward_from_an_inner_node(impl, draw):
    # backward() on n4 reaches only what n4 depends on: the leaf n2 gets gradient 0
    x, y, z = (float(v) for v in draw.tensor(3))
    check_graph(
        impl,
        [x, y, z],
        [("*", 0, 1), ("tanh", 3), ("*", 4, 2), ("+", 3, 4)],
        backward_from=4,
        hint="backward() starts at the node it is called on and sets its grad to 1.0",
    )


def test_ints_work_and_inputs_are_not_changed(impl):
    a, b = impl.Value(1.5), impl.Value(3)
    out = ((a * b + 2) / b - a**2).tanh() + (1 - a).relu() + a.log() + b.sigmoid().exp()
    a_data, b_data, out_data = attributes([a, b, out], "data")
    if [a_data, b_data] != [1.5, 3.0]:
        raise CheckFailure(
            f"building an expression changed its inputs: a.data, b.data are now {[a_data, b_data]}",
            hint="operations return new Values and never modify their operands",
        )
    for what, value in (("Value(3).data", b_data), ("the result's .data", out_data)):
        if type(value) is not float:
            raise CheckFailure(
                f"{what} is a {type(value).__name__}, expected float", hint="data = float(data)"
            )
