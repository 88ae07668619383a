"""Hidden graders for exercise 1.2a (scalar autograd): 15 points.

The oracle is torch autograd in float64 (exercises/support/section1/scalar_autograd.py).
Graphs are plain data built by hypothesis and run twice by the same interpreter, here in
the grader: on torch tensors and on the learner's Values (operators and methods
only; just ``.data`` and ``.grad`` floats are read back). Sandboxed, each operation
on a Value is a request on a handle; ``pipelined`` sends a whole graph's operations
in one round trip.
"""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import SEEDS, CheckFailure, Draw, attributes, load_support, pipelined

pytestmark = pytest.mark.exercise("1.2a")
support = load_support("1.2a")

CONSTANTS = st.sampled_from([2.0, -1.5, 0.5, 3, -2, 1.25])  # ints too: 2 * v must work
EXPONENTS = st.sampled_from([2, 3, -1, -2, 0.5, 1.5, 2.5])
RTOL = 1e-9  # float64; a deep graph accumulates a few ulps per step


def close(got: float, want: float, scale: float) -> bool:
    return math.isclose(got, want, rel_tol=RTOL, abs_tol=RTOL * max(1.0, scale))


def floats_of(nodes, attr: str, what: str) -> list[float]:
    out = []
    for k, value in enumerate(attributes(nodes, attr)):
        if type(value) not in (float, int):
            raise CheckFailure(
                f"n{k}.{attr} ({what}) is a {type(value).__name__}, expected a plain float",
                hint="store numbers as float (data = float(data)); grad starts at 0.0",
            )
        out.append(float(value))
    return out


def check_graph(impl, leaves, steps, *, hint, backward_from=-1):
    """The learner's values and leaf gradients against torch float64 autograd."""
    graph = support.as_graph_text(leaves, steps)
    with pipelined(impl):  # three round trips in all when sandboxed
        nodes = support.evaluate([impl.Value(x) for x in leaves], steps)
        grads_before = floats_of(nodes[: len(leaves)], "grad", "before backward")
        if any(grads_before):
            raise CheckFailure(f"leaf gradients before backward(): expected 0.0, got {grads_before}")
        nodes[backward_from].backward()
        values = floats_of(nodes, "data", "value")
        grads = floats_of(nodes[: len(leaves)], "grad", "gradient")
    want_values, want_grads = support.torch_values_and_grads(leaves, steps)
    for k, (got, want) in enumerate(zip(values, want_values)):
        if not close(got, want, abs(want)):
            raise CheckFailure(
                f"value of n{k}: expected {want!r}, got {got!r} (float64, rtol={RTOL:g})"
                f"\nin the graph\n{graph}",
                hint=hint,
            )
    scale = max(abs(g) for g in want_grads)
    for k, (got, want) in enumerate(zip(grads, want_grads)):
        if not close(got, want, scale):
            raise CheckFailure(
                f"d n{len(nodes) - 1} / d n{k}: expected {want!r}, got {got!r} (float64, rtol={RTOL:g})"
                f"\nin the graph\n{graph}",
                hint=hint,
            )


# --- strategies --------------------------------------------------------------


@st.composite
def step(draw_st, n_nodes: int):
    # Mostly recent nodes (deep graphs, interior nodes with several consumers), sometimes any node.
    node = st.one_of(st.integers(max(0, n_nodes - 3), n_nodes - 1), st.integers(0, n_nodes - 1))
    kind = draw_st(st.sampled_from(["unary", "pow", "binary", "binary", "const_left", "const_right"]))
    if kind == "unary":
        return (draw_st(st.sampled_from(support.UNARY)), draw_st(node))
    if kind == "pow":
        return ("pow", draw_st(node), draw_st(EXPONENTS))
    op = draw_st(st.sampled_from(support.BINARY))
    if kind == "binary":
        i = draw_st(node)
        j = draw_st(st.one_of(node, st.just(i)))  # often the same node twice
        return (op, i, j)
    if kind == "const_left":
        return (op, "const", draw_st(CONSTANTS), draw_st(node))
    return (op, draw_st(node), "const", draw_st(CONSTANTS))


def operands(step) -> list[int]:
    if step[0] == "pow" or len(step) == 2 or (len(step) == 4 and step[1] != "const"):
        return [step[1]]
    return [step[3]] if step[1] == "const" else [step[1], step[2]]


@st.composite
def graphs(draw_st, max_leaves: int = 4, max_steps: int = 25):
    n_leaves = draw_st(st.integers(1, max_leaves))
    leaves = [float(x) for x in Draw(draw_st(SEEDS)).tensor(n_leaves, scale=1.5).double()]
    steps = []
    for _ in range(draw_st(st.integers(1, max_steps))):
        steps.append(draw_st(step(n_leaves + len(steps))))
    # Add every node nothing consumes into the root, so the whole graph feeds the output.
    used = {i for s in steps for i in operands(s)}
    root = n_leaves + len(steps) - 1
    for sink in range(n_leaves, root):
        if sink not in used:
            steps.append(("+", n_leaves + len(steps) - 1, sink))
    return leaves, support.make_safe(leaves, steps)


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


def rnn_chain(seed: int, depth: int):
    """h = tanh(h * w + x), ``depth`` times: w and x are used at every step."""
    x, w, h = (float(v) for v in Draw(seed).tensor(3, scale=0.5))
    steps = []
    h_index = 2
    for _ in range(depth):
        n = 3 + len(steps)
        steps += [("*", h_index, 1), ("+", n, 0), ("tanh", n + 1)]
        h_index = n + 2
    return [x, w, h], steps


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
    graph = support.as_graph_text([x, y, z], steps)
    with pipelined(impl):
        nodes = support.evaluate([impl.Value(v) for v in (x, y, z)], steps)
        nodes[4].backward()
        got = floats_of(nodes[:3], "grad", "gradient")
    want_values, want_grads = support.torch_values_and_grads([x, y, z], steps[:2])
    for k in range(3):
        if not close(got[k], want_grads[k], 1.0):
            raise CheckFailure(
                f"after n4.backward(): d n4 / d n{k} expected {want_grads[k]!r}, got {got[k]!r} in\n{graph}",
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
