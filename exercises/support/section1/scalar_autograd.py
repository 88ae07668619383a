"""Support for exercise 1.2a (scalar autograd): expression graphs as plain data, the
torch-autograd oracle, the graphs the tests draw, the check they share, the named
misconceptions and the figure.

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
a handle, and :func:`check_graph` queues a graph's steps with :func:`llmkit.testing.pipelined`.
:func:`make_safe` rewrites a graph so every step stays in its
domain (log of positives, no division near 0, no overflow).

Each misconception's variant is torch autograd on the same graph with one thing
changed: a ``torch.autograd.Function`` whose backward makes the mistake, an operand
order swapped, or some uses of a node cut off (``detach``) where the mistaken
backward pass loses their share.
"""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import (
    SEEDS,
    CheckFailure,
    Draw,
    Misconception,
    Misconceptions,
    assert_close,
    attributes,
    pipelined,
)

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


def operands(step) -> list[tuple[int, int]]:
    """``(position, node)`` for each node a step reads: position 0 is the left operand
    (the only one of a unary step), 1 the right one."""
    if step[0] in UNARY or step[0] == "pow":
        return [(0, step[1])]
    if step[1] == "const":
        return [(1, step[3])]
    if len(step) == 4:
        return [(0, step[1])]
    return [(0, step[1]), (1, step[2])]


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


# --- the oracle: torch float64 autograd, and the same with one thing changed ------

_TORCH = {
    "neg": lambda x: -x,
    "exp": torch.exp,
    "log": torch.log,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "pow": lambda x, n: x**n,
    **_BIN,
    "c-v": lambda c, v: c - v,  # a number on the left
    "c/v": lambda c, v: c / v,
}


def torch_graph(leaves: list[float], steps: list, *, fns: dict | None = None, cut=frozenset()):
    """(value of every node, d(last node)/d(leaf) for every leaf) by torch float64 autograd.

    ``fns`` replaces some operations (keys of ``_TORCH``); ``cut`` holds ``(step index,
    operand position)`` pairs whose operand is read through ``detach()``: that use of
    the node passes no gradient back. A leaf the last node does not reach gets 0.
    """
    fns = {**_TORCH, **(fns or {})}
    leaf_tensors = [torch.tensor(float(x), dtype=torch.float64, requires_grad=True) for x in leaves]
    nodes = list(leaf_tensors)
    for k, step in enumerate(steps):
        read = {p: nodes[i].detach() if (k, p) in cut else nodes[i] for p, i in operands(step)}
        op = step[0]
        if op in UNARY:
            out = fns[op](read[0])
        elif op == "pow":
            out = fns["pow"](read[0], step[2])
        elif step[1] == "const":
            out = fns[f"c{op}v"](step[2], read[1]) if op in ("-", "/") else fns[op](step[2], read[1])
        elif len(step) == 4:
            out = fns[op](read[0], step[3])
        else:
            out = fns[op](read[0], read[1])
        nodes.append(out)
    values = [float(n.detach()) for n in nodes]
    root = nodes[-1]
    if not root.requires_grad:
        return values, [0.0] * len(leaves)
    grads = torch.autograd.grad(root, leaf_tensors, allow_unused=True)
    return values, [0.0 if g is None else float(g) for g in grads]


def torch_values_and_grads(leaves: list[float], steps: list) -> tuple[list[float], list[float]]:
    """(value of every node, d(last node)/d(leaf) for every leaf), by torch float64 autograd.

    A leaf that the last node does not depend on gets gradient 0.
    """
    return torch_graph(leaves, steps)


def as_graph_text(leaves: list[float], steps: list, limit: int = 40) -> str:
    """A readable listing for failure messages: n3 = n1 * n1, ... (long graphs abridged)."""
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
    if len(lines) > limit:
        head, tail = limit * 2 // 3, limit // 3
        lines = [*lines[:head], f"... ({len(lines) - head - tail} more nodes)", *lines[-tail:]]
    return "\n".join(f"  {line}" for line in lines)


# --- the mistakes, as torch autograd on the same graph with one thing changed ------


class TanhGradFromInput(torch.autograd.Function):
    """tanh whose backward uses 1 - x**2 with the input x (1.2b's support uses it too)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.tanh(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1 - x**2)


class _ReluMaskOnOutput(torch.autograd.Function):
    """relu whose backward masks with (output >= 0): always true, so every gradient passes."""

    @staticmethod
    def forward(ctx, x):
        out = torch.relu(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out >= 0).to(grad.dtype)


class _PowExponentNotLowered(torch.autograd.Function):
    """x ** n whose backward is n * x ** n (the exponent not lowered by one)."""

    @staticmethod
    def forward(ctx, x, n):
        ctx.save_for_backward(x)
        ctx.n = n
        return x**n

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.n * x**ctx.n, None


def first_use_only(leaves: list[float], steps: list) -> set[tuple[int, int]]:
    """The uses to cut when gradients are assigned (=) instead of added (+=).

    Run from the last step back to the first (a topological order), each ``=``
    overwrites what the previous consumer wrote: a node keeps the share of its
    earliest consumer only, and of a step that reads it twice (``a * a``), one share.
    """
    used, cut = set(), set()
    for k, step in enumerate(steps):
        here = set()
        for position, i in reversed(operands(step)):  # the right operand's share is written last
            if i in used or i in here:
                cut.add((k, position))
            here.add(i)
        used |= here
    return cut


def passed_on_too_early(leaves: list[float], steps: list) -> set[tuple[int, int]]:
    """The uses to cut when backward() runs each node's rule as a depth-first walk from
    the root first reaches it (a stack; children pushed in operand order), without a
    topological order: a consumer that runs after the node it reads has added its share
    too late for the node to pass it on (a leaf passes nothing on, so it loses nothing)."""
    n_leaves, root = len(leaves), len(leaves) + len(steps) - 1
    when: dict[int, int] = {}
    stack, seen = [root], {root}
    while stack:
        node = stack.pop()
        when[node] = len(when)
        if node >= n_leaves:
            for _, child in operands(steps[node - n_leaves]):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
    return {
        (k, position)
        for k, step in enumerate(steps)
        for position, i in operands(step)
        if i >= n_leaves and n_leaves + k in when and when[n_leaves + k] > when[i]
    }


def _variant(part: int, *, fns=None, cut=None):
    """A variant of the "Value" (node values, ``part`` 0) or "Value.backward" (leaf
    gradients, ``part`` 1) check: ``torch_graph`` with the mistake."""

    def variant(leaves, steps):
        result = torch_graph(leaves, steps, fns=fns, cut=cut(leaves, steps) if cut else frozenset())
        return torch.tensor(result[part], dtype=torch.float64)

    return variant


def _both(**mistake) -> dict:
    return {"Value": _variant(0, **mistake), "Value.backward": _variant(1, **mistake)}


README = "exercises/section1/README.md"

MISCONCEPTIONS = Misconceptions(
    README,
    Misconception(
        "rsub_swapped",
        "2 - v computed as v - 2",
        "Python calls v.__rsub__(2) for 2 - v: the number is the left operand (2 - v = -v + 2)",
        readme="Numbers on the left: reflected operators",
        variants=_both(fns={"c-v": lambda c, v: v - c}),
    ),
    Misconception(
        "rtruediv_swapped",
        "2 / v computed as v / 2",
        "Python calls v.__rtruediv__(2) for 2 / v: the number is the numerator (2 / v = 2 * v**-1)",
        readme="Numbers on the left: reflected operators",
        variants=_both(fns={"c/v": lambda c, v: v / c}),
    ),
    Misconception(
        "grad_assigned_not_accumulated",
        "gradients assigned (=), not added (+=)",
        "a node used twice (a * a, or a feeding two branches) receives a share from every use: "
        "child.grad += local * out.grad",
        readme="Every use adds to the gradient",
        variants={"Value.backward": _variant(1, cut=first_use_only)},
    ),
    Misconception(
        "no_topological_order",
        "backward() without a topological order",
        "a node may pass its gradient on only after every node that uses it has added its share: "
        "build the topological order first, then run the rules in reverse",
        readme="Reverse topological order",
        variants={"Value.backward": _variant(1, cut=passed_on_too_early)},
    ),
    Misconception(
        "recursive_topological_sort",
        "a recursive topological sort",
        "each node of a chain costs one Python stack frame, and Python stops near 1000: "
        "build the order with an explicit stack",
        readme="Reverse topological order",
    ),
    Misconception(
        "tanh_grad_from_input",
        "tanh's derivative from the input",
        "d tanh(x)/dx = 1 - tanh(x)**2 = 1 - y**2 with the output y, not 1 - x**2",
        readme="Local derivatives",
        variants={"Value.backward": _variant(1, fns={"tanh": TanhGradFromInput.apply})},
    ),
    Misconception(
        "relu_mask_on_output",
        "relu's mask read from its output",
        "relu's output is never negative, so (out >= 0) lets every gradient through: "
        "the gradient passes where the input x > 0",
        readme="Local derivatives",
        variants={"Value.backward": _variant(1, fns={"relu": _ReluMaskOnOutput.apply})},
    ),
    Misconception(
        "pow_grad_exponent_not_lowered",
        "power rule without lowering the exponent",
        "d(x**n)/dx = n * x**(n - 1), not n * x**n",
        readme="Local derivatives",
        variants={"Value.backward": _variant(1, fns={"pow": _PowExponentNotLowered.apply})},
    ),
)


# --- the check public tests and graders share --------------------------------------

RTOL = 1e-9  # float64; a deep graph accumulates a few ulps per step


def _floats(nodes, attr: str, what: str) -> list[float]:
    out = []
    for k, value in enumerate(attributes(nodes, attr)):
        if type(value) not in (float, int):
            raise CheckFailure(
                f"n{k}.{attr} ({what}) is a {type(value).__name__}, expected a plain float",
                hint="store numbers as float (data = float(data)); grad starts at 0.0",
            )
        out.append(float(value))
    return out


def _close(got: list[float], want: list[float], *, name: str, suspects, graph: str, hint: str | None):
    scale = max([1.0, *(abs(w) for w in want)])
    try:
        assert_close(
            torch.tensor(got, dtype=torch.float64),
            torch.tensor(want, dtype=torch.float64),
            name=name,
            rtol=RTOL,
            atol=RTOL * scale,
            suspects=suspects,
        )
    except CheckFailure as failure:
        raise CheckFailure(f"{failure}\nin the graph\n{graph}", hint=hint) from None


def check_graph(impl, leaves: list[float], steps: list, *, hint: str | None = None, backward_from: int = -1):
    """The learner's node values and leaf gradients against torch float64 autograd.

    Builds the graph from ``impl.Value`` leaves, checks that leaves start with grad 0.0,
    calls ``backward()`` on node ``backward_from`` (default: the last), then compares
    every node's ``.data`` and every leaf's ``.grad``; a failure names the likely mistake.
    """
    n_leaves, n_nodes = len(leaves), len(leaves) + len(steps)
    root = backward_from % n_nodes
    graph = as_graph_text(leaves, steps)
    with pipelined(impl):  # three round trips in all when sandboxed
        nodes = evaluate([impl.Value(x) for x in leaves], steps)
        before = _floats(nodes[:n_leaves], "grad", "before backward")  # errors in the forward pass land here
        if any(before):
            raise CheckFailure(
                f"leaf gradients before backward(): expected 0.0, got {before}", hint="grad starts at 0.0"
            )
        try:
            nodes[root].backward()
            values = _floats(nodes, "data", "value")
            grads = _floats(nodes[:n_leaves], "grad", "gradient")
        except RecursionError:
            raise MISCONCEPTIONS.failure(
                "recursive_topological_sort",
                f"n{root}.backward() raised RecursionError on a graph of {n_nodes} nodes",
            ) from None
    reached = steps[: max(0, root - n_leaves + 1)]  # the steps up to the root (none for a leaf)
    want_values, want_grads = torch_graph(leaves, steps)
    if root < n_leaves:
        want_grads = [float(k == root) for k in range(n_leaves)]
    elif len(reached) < len(steps):
        _, want_grads = torch_graph(leaves, reached)
    _close(
        values,
        want_values,
        name=f"node values (index k: node nk, {n_nodes} nodes)",
        suspects=MISCONCEPTIONS.on("Value", leaves, steps),
        graph=graph,
        hint=hint,
    )
    _close(
        grads,
        want_grads,
        name=f"leaf gradients after n{root}.backward() (index k: d n{root} / d nk)",
        suspects=MISCONCEPTIONS.on("Value.backward", leaves, reached),
        graph=graph,
        hint=hint,
    )


# --- graphs the tests draw ---------------------------------------------------------

CONSTANTS = st.sampled_from([2.0, -1.5, 0.5, 3, -2, 1.25])  # ints too: 2 * v must work
EXPONENTS = st.sampled_from([2, 3, -1, -2, 0.5, 1.5, 2.5])


@st.composite
def step(draw_st, n_nodes: int):
    """One random step reading the nodes 0 .. n_nodes - 1."""
    # Mostly recent nodes (deep graphs, interior nodes with several consumers), sometimes any node.
    node = st.one_of(st.integers(max(0, n_nodes - 3), n_nodes - 1), st.integers(0, n_nodes - 1))
    kind = draw_st(st.sampled_from(["unary", "pow", "binary", "binary", "const_left", "const_right"]))
    if kind == "unary":
        return (draw_st(st.sampled_from(UNARY)), draw_st(node))
    if kind == "pow":
        return ("pow", draw_st(node), draw_st(EXPONENTS))
    op = draw_st(st.sampled_from(BINARY))
    if kind == "binary":
        i = draw_st(node)
        j = draw_st(st.one_of(node, st.just(i)))  # often the same node twice
        return (op, i, j)
    if kind == "const_left":
        return (op, "const", draw_st(CONSTANTS), draw_st(node))
    return (op, draw_st(node), "const", draw_st(CONSTANTS))


@st.composite
def graphs(draw_st, max_leaves: int = 4, max_steps: int = 25):
    """``(leaves, steps)``: a random graph, made safe, whose every node feeds the last one."""
    n_leaves = draw_st(st.integers(1, max_leaves))
    leaves = [float(x) for x in Draw(draw_st(SEEDS)).tensor(n_leaves, scale=1.5).double()]
    steps = []
    for _ in range(draw_st(st.integers(1, max_steps))):
        steps.append(draw_st(step(n_leaves + len(steps))))
    # Add every node nothing consumes into the root, so the whole graph feeds the output.
    used = {i for s in steps for _, i in operands(s)}
    root = n_leaves + len(steps) - 1
    for sink in range(n_leaves, root):
        if sink not in used:
            steps.append(("+", n_leaves + len(steps) - 1, sink))
    return leaves, make_safe(leaves, steps)


def rnn_chain(seed: int, depth: int):
    """h = tanh(h * w + x), ``depth`` times: x and w are used at every step."""
    x, w, h = (float(v) for v in Draw(seed).tensor(3, scale=0.5))
    steps = []
    h_index = 2
    for _ in range(depth):
        n = 3 + len(steps)
        steps += [("*", h_index, 1), ("+", n, 0), ("tanh", n + 1)]
        h_index = n + 2
    return [x, w, h], steps


# --- the figure: the learner's Value at work ---------------------------------------

HIDDEN = 4  # the figure's tiny network: 2 inputs, HIDDEN tanh units, 1 tanh output


def _tiny_net_loss(params: list, X: list[list[float]], Y: list[float]):
    """Mean squared error of the 2-HIDDEN-1 tanh network, written with operators and
    ``tanh()`` only, so it runs on the learner's Values."""
    w1, b1 = params[: 2 * HIDDEN], params[2 * HIDDEN : 3 * HIDDEN]
    w2, b2 = params[3 * HIDDEN : 4 * HIDDEN], params[4 * HIDDEN]
    total = None
    for (x0, x1), y in zip(X, Y):
        out = b2
        for j in range(HIDDEN):
            out = out + w2[j] * (w1[2 * j] * x0 + w1[2 * j + 1] * x1 + b1[j]).tanh()
        err = (out.tanh() - y) ** 2
        total = err if total is None else total + err
    return total * (1.0 / len(X))


def _tiny_net(params: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """The same network in torch, on a batch of points."""
    w1, b1 = params[: 2 * HIDDEN].view(HIDDEN, 2), params[2 * HIDDEN : 3 * HIDDEN]
    w2, b2 = params[3 * HIDDEN : 4 * HIDDEN], params[4 * HIDDEN]
    return torch.tanh(b2 + torch.tanh(X @ w1.T + b1) @ w2)


def _xor_data(n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.rand(n, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    return X, torch.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0).to(torch.float64)


def _train_values(
    impl, init: list[float], X, Y, steps: int, lr: float
) -> tuple[list[float], list[float], str]:
    """Gradient descent with the learner's Values: (losses, final parameters, why it stopped early)."""
    params, losses = list(init), []
    X, Y = X.tolist(), Y.tolist()
    for step in range(steps):
        leaves = [impl.Value(p) for p in params]
        try:
            loss = _tiny_net_loss(leaves, X, Y)
            loss.backward()
            value, grads = float(loss.data), [float(p.grad) for p in leaves]
        except (ArithmeticError, ValueError) as exc:  # a wrong gradient can make the weights blow up
            return losses, params, f"stopped at step {step}: {type(exc).__name__}"
        if not all(math.isfinite(v) for v in (value, *grads)):
            return losses, params, f"stopped at step {step}: the loss or a gradient is not finite"
        losses.append(value)
        params = [p - lr * g for p, g in zip(params, grads)]
    return losses, params, ""


def _train_torch(init: list[float], X, Y, steps: int, lr: float) -> list[float]:
    params, losses = torch.tensor(init, dtype=torch.float64), []
    for _ in range(steps):
        params = params.detach().requires_grad_()
        loss = ((_tiny_net(params, X) - Y) ** 2).mean()
        loss.backward()
        losses.append(float(loss.detach()))
        params = params - lr * params.grad
    return losses


def _draw_graph(ax, impl) -> None:
    """L = tanh(a·b + a) with the learner's data and grad on every node (torch's grad
    beside any that differs)."""
    a, b = impl.Value(2.0), impl.Value(-0.5)
    e = a * b
    d = e + a
    out = d.tanh()
    out.backward()
    ta, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (2.0, -0.5))
    te = ta * tb
    td = te + ta
    tout = torch.tanh(td)
    for t in (te, td):
        t.retain_grad()
    tout.backward()
    nodes = {
        "a": (0.0, 1.0, a, ta.grad),
        "b": (0.0, 0.0, b, tb.grad),
        "e = a·b": (1.4, 0.5, e, te.grad),
        "d = e + a": (2.8, 1.0, d, td.grad),
        "L = tanh(d)": (4.2, 1.0, out, 1.0),
    }
    edges = [("a", "e = a·b"), ("b", "e = a·b"), ("e = a·b", "d = e + a"), ("a", "d = e + a"),
             ("d = e + a", "L = tanh(d)")]  # fmt: skip
    for src, dst in edges:
        (x0, y0, *_), (x1, y1, *_) = nodes[src], nodes[dst]
        arrow = dict(arrowstyle="->", color="0.4")
        ax.annotate("", xy=(x1 - 0.45, y1), xytext=(x0 + 0.45, y0), arrowprops=arrow)
    wrong = 0
    for name, (x, y, node, want) in nodes.items():
        got, want = float(node.grad), float(want)
        text = f"{name}\ndata {float(node.data):+.3f}\ngrad {got:+.3f}"
        color = "#e8f0fe" if name in "ab" else "#fef3e0"
        if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
            text, color, wrong = f"{text}\ntorch {want:+.3f}", "#fde0dc", wrong + 1
        box = dict(boxstyle="round", fc=color, ec="0.5")
        ax.text(x, y, text, ha="center", va="center", fontsize=9, bbox=box)
    note = (
        f"{wrong} gradient(s) differ from torch's (red): see the 1.2a mistakes in the README"
        if wrong
        else "a feeds two nodes: its grad is the sum of both paths, (b + 1)·(1 - L²)"
    )
    ax.text(0.0, -0.65, note, ha="left", fontsize=9, color="#b3261e")
    ax.set_xlim(-0.7, 4.9)
    ax.set_ylim(-0.9, 1.6)
    ax.axis("off")
    ax.set_title("Your Values: L = tanh(a·b + a) after L.backward()", fontsize=11)


def figure(impl) -> Figure:
    """The learner's ``Value`` at work: a small graph after ``backward()`` with each
    node's data and grad; a tiny tanh network built from their Values, trained by
    gradient descent beside the same network trained with torch autograd; and what
    the network their gradients trained has learned."""
    fig, (graph_ax, loss_ax, map_ax) = new_figure(15.0, 4.2, ncols=3)
    _draw_graph(graph_ax, impl)

    X, Y = _xor_data()
    steps, lr = 50, 0.5
    init = torch.randn(4 * HIDDEN + 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.8
    yours, final, stopped = _train_values(impl, init.tolist(), X, Y, steps, lr)
    theirs = _train_torch(init.tolist(), X, Y, steps, lr)
    loss_ax.plot(range(steps), theirs, color="0.55", lw=4, alpha=0.6, label="torch autograd")
    loss_ax.plot(range(len(yours)), yours, color="#1a73e8", lw=1.6, label="your Value")
    if stopped:
        loss_ax.text(0.5, 0.5, stopped, transform=loss_ax.transAxes, ha="center", color="#b3261e", fontsize=9)
    loss_ax.set_xlabel("gradient-descent step")
    loss_ax.set_ylabel("mean squared error")
    loss_ax.legend(fontsize=9)
    loss_ax.set_title(f"A 2-{HIDDEN}-1 tanh network of your Values learns XOR;\n"
                      "torch from the same start: the curves should coincide", fontsize=10)  # fmt: skip

    grid = torch.linspace(-1.1, 1.1, 60, dtype=torch.float64)
    gx, gy = torch.meshgrid(grid, grid, indexing="xy")
    with torch.no_grad():
        z = _tiny_net(torch.tensor(final, dtype=torch.float64), torch.stack([gx.flatten(), gy.flatten()], 1))
    levels = torch.linspace(-1, 1, 21).tolist()
    z = z.view(60, 60).clamp(-1, 1).nan_to_num(0.0).numpy()
    image = map_ax.contourf(gx.numpy(), gy.numpy(), z, levels=levels, cmap="RdBu_r", vmin=-1, vmax=1)
    for label, color in ((1.0, "#b2182b"), (-1.0, "#2166ac")):
        pts = X[Y == label]
        map_ax.scatter(pts[:, 0], pts[:, 1], c=color, edgecolors="black", linewidths=0.8, s=50)
    fig.colorbar(image, ax=map_ax, shrink=0.8, ticks=[-1, 0, 1], label="network output")
    map_ax.set_aspect("equal")
    map_ax.set_title("What the network learned with your gradients\n(points: the XOR labels)", fontsize=10)
    return png(fig), "Your Value's gradients on a small graph, and a tiny network trained with them"
