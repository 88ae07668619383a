"""Hidden graders for exercise 1.2a (scalar autograd): 15 points.

The oracle is torch autograd in float64 (exercises/support/section1/scalar_autograd.py).
Graphs are plain data built by hypothesis and run twice by the same interpreter, here in
the grader: on torch tensors and on the learner's Values (operators and methods
only; just ``.data`` and ``.grad`` floats are read back). Sandboxed, each operation
on a Value is a request on a handle; ``pipelined`` sends a whole graph's operations
in one round trip.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import SEEDS, CheckFailure, Draw, attributes, load_support, pipelined

pytestmark = pytest.mark.exercise("1.2a")
support = load_support("1.2a")
check_graph = support.check_graph  # values, then leaf gradients, with the named mistakes
CONSTANTS, EXPONENTS = support.CONSTANTS, support.EXPONENTS
graphs, rnn_chain = support.graphs, support.rnn_chain


# --- single operations (5 points) --------------------------------------------

UNARY_HINTS = {
    "neg": "-v is v * -1",
    "exp": "d exp(x)/dx = exp(x)",
    "log": "d log(x)/dx = 1/x",
    "tanh": "d tanh(x)/dx = 1 - tanh(x)**2: use the output, not the input",
    "relu": "relu passes the gradient only where the input is > 0",
    "sigmoid": "d sigmoid(x)/dx = s * (1 - s) with s = sigmoid(x)",
}


@pytest.mark.points(2)
@settings(max_examples=60)
@given(op=st.sampled_from(support.UNARY), seed=SEEDS)
def test_unary_operations(impl, op, seed):
    x = float(Draw(seed).tensor(1, scale=2.0)[0])
    if op == "log":
        x = abs(x) + 0.05
    check_graph(impl, [x], [(op, 0)], hint=UNARY_HINTS[op])


@pytest.mark.points(1)
@settings(max_examples=40)
@given(exponent=EXPONENTS, seed=SEEDS)
def test_powers(impl, exponent, seed):
    x = abs(float(Draw(seed).tensor(1)[0])) + 0.2
    x = x if exponent != int(exponent) or seed % 2 else -x  # negative bases for integer exponents
    check_graph(impl, [x], [("pow", 0, exponent)], hint="d(x**n)/dx = n * x**(n - 1), n a number")


REFLECTED = {"+": "add", "-": "sub", "*": "mul", "/": "truediv"}


@pytest.mark.points(2)
@settings(max_examples=60)
@given(op=st.sampled_from(support.BINARY), side=st.sampled_from(["left", "right"]), c=CONSTANTS, seed=SEEDS)
def test_constants_on_either_side(impl, op, side, c, seed):
    a, b = (float(v) for v in Draw(seed).tensor(2, scale=2.0))
    a = a if abs(a) > 0.2 else a + 1.0
    const_step = (op, "const", c, 0) if side == "left" else (op, 0, "const", c)
    # a constant step, then a binary step so the constant's result is combined with another leaf
    check_graph(
        impl,
        [a, b],
        [const_step, ("*", 2, 1)],
        hint=f"c {op} v calls v.__r{REFLECTED[op]}__(c): the number is the *left* operand "
        "(2 - v is not v - 2, 2 / v is not v / 2)"
        if side == "left"
        else f"v {op} c with a plain number c: wrap c in a Value (or use it as a float) first",
    )


# --- graphs (8 points) -------------------------------------------------------


@pytest.mark.points(4)
@settings(max_examples=120)
@given(graph=graphs())
def test_random_graphs_match_torch(impl, graph):
    leaves, steps = graph
    check_graph(
        impl,
        leaves,
        steps,
        hint="if only some graphs fail: use += (nodes used more than once) and a real topological "
        "order (a node passes its gradient on only after receiving all of it)",
    )


@pytest.mark.points(2)
@settings(max_examples=30)
@given(seed=SEEDS, which=st.integers(0, 3))
def test_shared_sub_expressions(impl, seed, which):
    x, y = (float(v) * 0.8 for v in Draw(seed).tensor(2))
    cases = [
        [("*", 0, 0), ("+", 2, 0)],  # x * x + x
        [("*", 0, 1), ("+", 2, 2)],  # a = x*y; a + a
        [("tanh", 0), ("*", 0, "const", 3.0), ("*", 2, 3), ("+", 4, 2)],  # diamond through x
        [("*", 0, 1), ("sigmoid", 2), ("exp", 2), ("*", 3, 4), ("-", 5, 2), ("/", 6, "const", 2)],
    ]
    check_graph(
        impl,
        [x, y],
        cases[which],
        hint="a node used several times must receive the sum of the gradients of all its uses (+=), "
        "and must pass it on only once that sum is complete (topological order)",
    )


@pytest.mark.points(1)
@settings(max_examples=10)
@given(seed=SEEDS, depth=st.integers(20, 100))
def test_deep_chains(impl, seed, depth):
    leaves, steps = rnn_chain(seed, depth)
    check_graph(
        impl,
        leaves,
        steps,
        hint=f"a chain {depth} steps deep that reuses x and w at every step: every use adds to their "
        "gradient (+=), and each h passes its gradient on only after receiving it",
    )


@pytest.mark.points(1)
@settings(max_examples=3)
@given(seed=SEEDS, depth=st.integers(1000, 1500))
def test_very_deep_chains(impl, seed, depth):
    leaves, steps = rnn_chain(seed, depth)
    check_graph(
        impl,
        leaves,
        steps,
        hint=f"a chain of {3 * depth} nodes: a recursive topological sort hits Python's recursion "
        "limit (~1000 frames); build the order with an explicit stack (see the backward() docstring)",
    )


# --- details (2 points) ------------------------------------------------------


@pytest.mark.points(1)
def test_backward_from_an_inner_node(impl, draw):
    # backward() on an inner node reaches only what that node depends on.
    x, y, z = (float(v) for v in draw.tensor(3))
    steps = [("*", 0, 1), ("tanh", 3), ("*", 4, 2), ("+", 3, 4)]  # n5 uses z, n4 does not
    check_graph(
        impl,
        [x, y, z],
        steps,
        backward_from=4,
        hint="backward() starts at the node it is called on and sets its grad to 1.0",
    )


@pytest.mark.points(1)
@settings(max_examples=20)
@given(seed=SEEDS)
def test_inputs_are_not_changed_and_ints_work(impl, seed):
    a_val, b_val = (abs(float(v)) + 0.5 for v in Draw(seed).tensor(2))
    with pipelined(impl):  # one round trip when sandboxed
        a, b = impl.Value(a_val), impl.Value(int(round(b_val)) or 1)
        out = ((a * b + 2) / b - a**2).tanh() + (1 - a).relu() + a.log() + b.sigmoid().exp()
        a_data, b_data, out_data = attributes([a, b, out], "data")
    if [a_data, b_data] != [a_val, float(int(round(b_val)) or 1)]:
        raise CheckFailure(
            f"building an expression changed its inputs: a.data, b.data are now {[a_data, b_data]}",
            hint="operations return new Values and never modify their operands",
        )
    if type(b_data) is not float:
        raise CheckFailure(
            f"Value(3).data is a {type(b_data).__name__}, expected float", hint="data = float(data)"
        )
    if type(out_data) is not float:
        raise CheckFailure(f"the result's .data is a {type(out_data).__name__}, expected float")
