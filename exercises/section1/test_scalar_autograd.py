"""Public tests for exercise 1.2a (scalar autograd). Run: pytest exercises/section1

These compare a few small expressions with torch's autograd. The hidden
graders also build hundreds of random expression graphs (shared nodes, deep
chains, constants on either side of every operator).
"""

import math

import pytest

from llmkit.testing import CheckFailure, load_support

pytestmark = pytest.mark.exercise("1.2a")
support = load_support("1.2a")


def check_graph(impl, leaves, steps, hint):
    """Run the graph on the learner's Values and on torch; compare values and leaf gradients."""
    nodes = support.evaluate([impl.Value(x) for x in leaves], steps)
    nodes[-1].backward()
    want_values, want_grads = support.torch_values_and_grads(leaves, steps)
    graph = support.as_graph_text(leaves, steps)
    for k, (node, want) in enumerate(zip(nodes, want_values)):
        if not math.isclose(node.data, want, rel_tol=1e-9, abs_tol=1e-12):
            raise CheckFailure(f"value of n{k}: expected {want!r}, got {node.data!r} in\n{graph}", hint=hint)
    for k, want in enumerate(want_grads):
        got = nodes[k].grad
        if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
            raise CheckFailure(
                f"gradient of n{k} after n{len(nodes) - 1}.backward(): expected {want!r}, got {got!r} in\n"
                f"{graph}",
                hint=hint,
            )


def test_add_and_multiply(impl):
    # n2 = a * b, n3 = n2 + a
    check_graph(
        impl,
        [2.0, -3.0],
        [("*", 0, 1), ("+", 2, 0)],
        hint="d(a*b)/da = b; d(a+b)/da = 1; add, don't overwrite",
    )


def test_elementwise_functions(impl):
    for op, x in [
        ("exp", 0.7),
        ("log", 1.9),
        ("tanh", -0.4),
        ("relu", 1.3),
        ("relu", -1.3),
        ("sigmoid", 0.8),
    ]:
        check_graph(
            impl, [x], [(op, 0)], hint=f"check the local derivative of {op} (see the Value docstring)"
        )


def test_powers_and_negation(impl):
    check_graph(impl, [1.5], [("pow", 0, 3)], hint="d(x**n)/dx = n * x**(n-1)")
    check_graph(impl, [1.5], [("pow", 0, -1)], hint="d(x**n)/dx = n * x**(n-1)")
    check_graph(impl, [1.5], [("neg", 0)], hint="-x is x * -1")


def test_a_node_used_twice(impl):
    # x * x: both factors are the same node; its gradient is 2x, not x.
    check_graph(impl, [3.0], [("*", 0, 0)], hint="use += for gradients: each use of a node adds its part")


def test_constants_on_either_side(impl):
    steps = [("-", "const", 2.0, 0), ("/", "const", 3.0, 1), ("*", 2, "const", 4.0), ("+", 3, "const", 1.0)]
    check_graph(impl, [0.5], steps, hint="2 - v calls v.__rsub__(2) and 3 / v calls v.__rtruediv__(3)")


def test_shared_branches(impl):
    # a feeds two branches that meet again: a -> b = a.tanh(), c = a * 2, d = b * c
    steps = [("tanh", 0), ("*", 0, "const", 2.0), ("*", 1, 2), ("+", 3, 1)]
    check_graph(impl, [0.3], steps, hint="visit nodes in reverse topological order (build the order first)")
