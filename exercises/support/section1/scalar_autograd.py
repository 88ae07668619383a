"""Support for exercise 1.2a (scalar autograd): expression graphs as plain data, the
torch-autograd oracle and the notebook's figure.

A graph is a list of leaf values and a list of steps; each step appends one node
computed from earlier nodes (by index) and constants:

    ("neg" | "exp" | "log" | "tanh" | "relu" | "sigmoid", i)     unary
    ("pow", i, exponent)                                            v_i ** exponent
    ("+" | "-" | "*" | "/", i, j)                                   v_i op v_j (i == j allowed)
    ("+" | "-" | "*" | "/", i, "const", c)                          v_i op c
    ("+" | "-" | "*" | "/", "const", c, i)                          c op v_i

The same interpreter (:func:`evaluate`) runs a graph on torch float64 tensors
(the oracle: torch autograd) and on the learner's ``Value`` objects, using
only Python operators and the methods ``exp/log/tanh/relu/sigmoid``, which
both provide. It always runs in the grader: sandboxed, each step is an operation on
a handle, and graders queue a graph's steps with :func:`llmkit.testing.pipelined`.
:func:`make_safe` rewrites a graph so every step stays in its
domain (log of positives, no division near 0, no overflow).
"""

from __future__ import annotations

import math

import torch

from llmkit.figures import Figure, new_figure, png

UNARY = ("neg", "exp", "log", "tanh", "relu", "sigmoid")
BINARY = ("+", "-", "*", "/")

_MATH = {
    "neg": lambda x: -x,
    "exp": math.exp,
    "log": math.log,
    "tanh": math.tanh,
    "relu": lambda x: max(x, 0.0),
    "sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x)),
}
_BIN = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}


def apply(step, nodes: list):
    """One step on already computed ``nodes`` (tensors or the learner's Values)."""
    op = step[0]
    if op == "neg":
        return -nodes[step[1]]
    if op in UNARY:
        return getattr(nodes[step[1]], op)()
    if op == "pow":
        return nodes[step[1]] ** step[2]
    fn = _BIN[op]
    if step[1] == "const":
        return fn(step[2], nodes[step[3]])
    if len(step) == 4:  # (op, i, "const", c)
        return fn(nodes[step[1]], step[3])
    return fn(nodes[step[1]], nodes[step[2]])


def evaluate(leaves: list, steps: list) -> list:
    """All nodes of the graph: the leaves, then one node per step."""
    nodes = list(leaves)
    for step in steps:
        nodes.append(apply(step, nodes))
    return nodes


def _float_step(step, values: list[float]) -> float:
    op = step[0]
    if op in UNARY:
        return _MATH[op](values[step[1]])
    if op == "pow":
        return values[step[1]] ** step[2]
    if step[1] == "const":
        return _BIN[op](step[2], values[step[3]])
    if len(step) == 4:
        return _BIN[op](values[step[1]], step[3])
    return _BIN[op](values[step[1]], values[step[2]])


def make_safe(leaves: list[float], steps: list) -> list:
    """``steps`` rewritten so that every intermediate value stays well inside its domain.

    An argument of log (or of a fractional or negative power, or a divisor)
    that is too close to 0 or negative is first replaced by ``v * v + 1``
    (itself a shared sub-expression); exp of a large argument goes through
    tanh first; relu never sees an exact 0; results beyond +-50 are scaled down
    by a constant. Indices are remapped to the rewritten graph.
    """
    values = [float(x) for x in leaves]
    out: list = []
    where = list(range(len(values)))  # original node index -> rewritten node index

    def emit(step) -> int:
        values.append(_float_step(step, values))
        out.append(step)
        return len(values) - 1

    def positive(i: int, low: float) -> int:
        if values[i] > low:
            return i
        return emit(("+", emit(("*", i, i)), "const", 1.0))

    def away_from_zero(i: int, low: float) -> int:
        return i if abs(values[i]) > low else positive(i, low)

    for step in steps:
        op = step[0]
        if op in UNARY:
            i = where[step[1]]
            if op == "log":
                i = positive(i, 0.1)
            elif op == "exp" and values[i] > 4.0:
                i = emit(("tanh", i))
            elif op == "relu" and abs(values[i]) < 1e-3:
                i = emit(("+", i, "const", 0.5))
            r = emit((op, i))
        elif op == "pow":
            i, e = where[step[1]], step[2]
            if e != int(e):
                i = positive(i, 0.1)
            elif e < 0:
                i = away_from_zero(i, 0.2)
            r = emit(("pow", i, e))
        elif step[1] == "const":
            c, i = step[2], where[step[3]]
            if op == "/":
                i = away_from_zero(i, 0.2)
            r = emit((op, "const", c, i))
        elif len(step) == 4:
            r = emit((op, where[step[1]], "const", step[3]))
        else:
            i, j = where[step[1]], where[step[2]]
            if op == "/" and j != i:
                j = away_from_zero(j, 0.2)
            elif op == "/":  # v / v: keep the shared node, make it safe for both uses
                i = j = away_from_zero(i, 0.2)
            r = emit((op, i, j))
        if abs(values[r]) > 50.0:
            r = emit(("*", r, "const", 10.0 / abs(values[r])))
        where.append(r)
    return out


def torch_values_and_grads(leaves: list[float], steps: list) -> tuple[list[float], list[float]]:
    """(value of every node, d(last node)/d(leaf) for every leaf), by torch float64 autograd.

    A leaf that the last node does not depend on gets gradient 0.
    """
    leaf_tensors = [torch.tensor(float(x), dtype=torch.float64, requires_grad=True) for x in leaves]
    nodes = evaluate(leaf_tensors, steps)
    grads = torch.autograd.grad(nodes[-1], leaf_tensors, allow_unused=True)
    values = [float(n.detach()) for n in nodes]
    return values, [0.0 if g is None else float(g) for g in grads]


def as_graph_text(leaves: list[float], steps: list) -> str:
    """A readable listing for failure messages: n3 = n1 * n1, ..."""
    lines = [f"n{i} = {x!r}" for i, x in enumerate(leaves)]
    for k, step in enumerate(steps):
        n, op = len(leaves) + k, step[0]
        if op == "neg":
            expr = f"-n{step[1]}"
        elif op in UNARY:
            expr = f"n{step[1]}.{op}()"
        elif op == "pow":
            expr = f"n{step[1]} ** {step[2]!r}"
        elif step[1] == "const":
            expr = f"{step[2]!r} {op} n{step[3]}"
        elif len(step) == 4:
            expr = f"n{step[1]} {op} {step[3]!r}"
        else:
            expr = f"n{step[1]} {op} n{step[2]}"
        lines.append(f"n{n} = {expr}")
    return "\n".join(lines)


def figure() -> Figure:
    """Forward values and gradients of a small graph, by torch autograd."""
    a = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-0.5, dtype=torch.float64, requires_grad=True)
    e = a * b
    d = e + a
    out = torch.tanh(d)
    for t in (e, d):
        t.retain_grad()
    out.backward()
    nodes = {
        "a": (0.0, 1.0, a.item(), a.grad.item()),
        "b": (0.0, 0.0, b.item(), b.grad.item()),
        "e = a·b": (1.4, 0.5, e.item(), e.grad.item()),
        "d = e + a": (2.8, 1.0, d.item(), d.grad.item()),
        "L = tanh(d)": (4.2, 1.0, out.item(), 1.0),
    }
    edges = [
        ("a", "e = a·b"),
        ("b", "e = a·b"),
        ("e = a·b", "d = e + a"),
        ("a", "d = e + a"),
        ("d = e + a", "L = tanh(d)"),
    ]
    fig, ax = new_figure(8.5, 3.0)
    for src, dst in edges:
        (x0, y0, *_), (x1, y1, *_) = nodes[src], nodes[dst]
        ax.annotate(
            "", xy=(x1 - 0.45, y1), xytext=(x0 + 0.45, y0), arrowprops=dict(arrowstyle="->", color="0.4")
        )
    for name, (x, y, value, grad) in nodes.items():
        ax.text(
            x, y, f"{name}\ndata {value:+.3f}\ngrad {grad:+.3f}", ha="center", va="center", fontsize=9,
            bbox=dict(boxstyle="round", fc="#e8f0fe" if name in "ab" else "#fef3e0", ec="0.5"),
        )  # fmt: skip
    ax.text(
        0.0, -0.6, "a feeds two nodes: its grad is the sum of both paths, (b + 1)·(1 - L²)",
        ha="left", fontsize=9, color="#b3261e",
    )  # fmt: skip
    ax.set_xlim(-0.7, 4.9)
    ax.set_ylim(-0.9, 1.6)
    ax.axis("off")
    ax.set_title("Forward values and backward gradients of L = tanh(a·b + a)", fontsize=11)
    return png(fig), "A small computation graph with each node's value and gradient"
