"""Support for exercise 1.3 (LSTM): oracles built on torch.nn.LSTMCell and torch.nn.LSTM,
the cases its tests draw, its named misconceptions and the figure.

Every oracle and every mistaken variant here is torch's own LSTM run on the tested cell's
parameters, changed where the mistake changes them (gate rows permuted, a bias zeroed, a
gate pinned open or shut, a pre-activation halved) through ``torch.func.functional_call``,
so autograd gives each variant's gradients too.
"""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    Misconception,
    Misconceptions,
    assert_close,
    describe_case,
    value_and_grad,
)

GATES = "ifgo"  # torch's row order: rows 0..H-1 are i, H..2H-1 f, then g, then o
PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
# A pre-activation that saturates: sigmoid(100) and tanh(100) are 1 in float32 and float64.
SATURATED = 100.0


def torch_cell(input_size: int, hidden_size: int, bias: bool, dtype: torch.dtype, seed: int) -> nn.LSTMCell:
    """A seeded ``nn.LSTMCell`` with weights drawn wider than torch's default, so that
    the gates are not all near 0.5 and a permuted gate order shows."""
    gen = torch.Generator().manual_seed(seed)
    cell = nn.LSTMCell(input_size, hidden_size, bias=bias).to(dtype)
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.6)
    return cell


def learner_state_dict(cell: nn.LSTMCell) -> dict[str, torch.Tensor]:
    """The cell's tensors under the exercise's names (the same as torch's)."""
    return {name: p.detach().clone() for name, p in cell.named_parameters()}


def torch_lstm(cell: nn.LSTMCell) -> nn.LSTM:
    """A one-layer ``nn.LSTM`` (time first) with ``cell``'s weights (a copy)."""
    layer = nn.LSTM(cell.input_size, cell.hidden_size, bias=cell.bias).to(cell.weight_ih.dtype)
    with torch.no_grad():
        for name, p in cell.named_parameters():
            getattr(layer, f"{name}_l0").copy_(p)
    return layer


def parameter_shapes(cell: nn.Module) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of a cell's parameters."""
    return {name: tuple(p.shape) for name, p in cell.named_parameters()}


# --- gate rows, changed the way a mistake changes them -----------------------------


def edit_gates(
    params: dict[str, torch.Tensor],
    hidden: int,
    *,
    order: str = GATES,
    scale: dict[str, float] | None = None,
    pin: dict[str, int] | None = None,
    bias_hh: bool = True,
) -> dict[str, torch.Tensor]:
    """``nn.LSTMCell`` parameters (missing biases count as zeros) changed with
    differentiable operations, so that torch's cell computes something else:

    * ``order``: the gate each block of H rows is read as: with "figo" rows 0..H-1
      act as the forget gate and rows H..2H-1 as the input gate;
    * ``scale``: ``{gate: factor}`` multiplies that gate's pre-activation;
    * ``pin``: ``{gate: +1 or -1}`` fixes that gate's pre-activation at +-SATURATED:
      a sigmoid gate is then 1 (open) or 0 (shut), the candidate g is +-1;
    * ``bias_hh=False``: bias_hh is not added.
    """
    zeros = params["weight_ih"].new_zeros(4 * hidden)
    out = {}
    for name in PARAMETERS:
        tensor = params.get(name)
        blocks = (zeros if tensor is None else tensor).split(hidden)
        rows = []
        for gate in GATES:
            block = blocks[order.index(gate)]
            if scale and gate in scale:
                block = block * scale[gate]
            if pin and gate in pin:
                block = block * 0 + (pin[gate] * SATURATED if name == "bias_ih" else 0.0)
            rows.append(block)
        joined = torch.cat(rows)
        out[name] = joined * 0 if name == "bias_hh" and not bias_hh else joined
    return out


class Run(nn.Module):
    """``forward(x, state=None)`` computed by ``how(self, x, state)`` from torch's LSTMs on
    ``cell``'s own parameters: the same tensors under the same names, so that
    ``value_and_grad`` finds their gradients where it finds the learner's."""

    def __init__(self, cell: nn.Module, how):
        super().__init__()
        self.input_size, self.hidden_size, self.how = cell.input_size, cell.hidden_size, how
        for name in PARAMETERS:
            p = getattr(cell, name, None)
            if p is None:
                self.register_parameter(name, None)
            else:
                setattr(self, name, p)

    def forward(self, x, state=None):
        return self.how(self, x, state)

    def edited(self, **edits) -> dict[str, torch.Tensor]:
        return edit_gates(dict(self.named_parameters()), self.hidden_size, **edits)

    def step(self, x, state=None, **edits) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of ``nn.LSTMCell``: (h, c)."""
        return functional_call(self._torch("cell"), self.edited(**edits), (x, state))

    def layer(self, x, state=None, **edits):
        """``nn.LSTM`` over x (T, B, I) from state (h, c), each (B, H): (outputs, (h_n, c_n))."""
        params = {f"{name}_l0": p for name, p in self.edited(**edits).items()}
        hx = None if state is None else (state[0][None], state[1][None])
        out, (h_n, c_n) = functional_call(self._torch("layer"), params, (x, hx))
        return out, (h_n[0], c_n[0])

    def _torch(self, kind: str) -> nn.Module:
        """torch's module, with no weights of its own (the meta device: nothing is drawn
        from the global generator): functional_call supplies them."""
        make = nn.LSTMCell if kind == "cell" else nn.LSTM
        return make(self.input_size, self.hidden_size, device="meta")


def cell_oracle(cell: nn.LSTMCell) -> Run:
    """``nn.LSTMCell`` on ``cell``'s parameters: ``forward(x, state=None) -> (h, c)``."""
    return Run(cell, lambda run, x, state: run.step(x, state))


def lstm_oracle(cell: nn.LSTMCell) -> Run:
    """``nn.LSTM`` on ``cell``'s parameters with the exercise's conventions:
    ``forward(x, state=None) -> (outputs, (h_n, c_n))``, states (B, H)."""
    return Run(cell, lambda run, x, state: run.layer(x, state))


# --- inputs the public tests and graders draw ----------------------------------

sizes = st.integers(1, 6)


@st.composite
def cell_case(draw_st):
    """One cell configuration: batch b, input size i, hidden size h, bias, dtype, value seed."""
    return dict(
        b=draw_st(st.integers(1, 4)),
        i=draw_st(sizes),
        h=draw_st(sizes),
        bias=draw_st(st.booleans()),
        dtype=draw_st(FLOAT_DTYPES),
        seed=draw_st(SEEDS),
    )


def cell_pair(impl, case) -> tuple[nn.Module, nn.LSTMCell]:
    """The learner's ``LSTMCell`` and an ``nn.LSTMCell`` holding the same weights."""
    reference = torch_cell(case["i"], case["h"], case["bias"], case["dtype"], case["seed"])
    cell = impl.LSTMCell(case["i"], case["h"], bias=case["bias"]).to(case["dtype"])
    cell.load_state_dict(learner_state_dict(reference))
    return cell, reference


def draw_state(rng, case) -> tuple[torch.Tensor, torch.Tensor]:
    """A drawn state (h, c) for ``case``, each (b, h)."""
    return tuple(rng.tensor(case["b"], case["h"], dtype=case["dtype"]) for _ in range(2))


def describe(case, **extra) -> str:
    return describe_case(
        "LSTMCell", case["i"], case["h"], bias=case["bias"], batch=case["b"], dtype=case["dtype"], **extra
    )


# --- misconceptions: what each known mistake returns, from torch's own LSTMs ---------

CELL_OUTPUTS = {"h": lambda out: out[0], "c": lambda out: out[1]}
LSTM_OUTPUTS = {"outputs": lambda out: out[0], "h_n": lambda out: out[1][0], "c_n": lambda out: out[1][1]}


def gradient(module: nn.Module, x, state, weights, wrt: str) -> torch.Tensor:
    """The gradient of ``sum(module(x, state) * weights)`` w.r.t. ``wrt``: "x", the
    state's "h_0" or "c_0", or a parameter's name."""
    got = value_and_grad(module, [x, state], weights)
    if wrt in ("x", "h_0", "c_0"):
        return {"x": got.inputs[0], "h_0": got.inputs[1][0], "c_0": got.inputs[1][1]}[wrt]
    return got.params[wrt]


def _variants(how, target: str, outputs: dict) -> dict:
    """The variants of ``target`` ("LSTMCell" or "lstm"), its outputs and its gradients,
    for a mistake computed by ``how(run, x, state)``."""

    def output(cell, x, state=None, *, out: str):
        return outputs[out](Run(cell, how)(x, state))

    def output_gradient(cell, x, state, weights, *, wrt: str):
        return gradient(Run(cell, how), x, state, weights, wrt)

    return {target: output, f"{target} gradient": output_gradient}


def _edited(**edits) -> dict:
    """Variants of the cell and of lstm() for a mistake that is torch's LSTM with changed weights."""
    return {
        **_variants(lambda run, x, state: run.step(x, state, **edits), "LSTMCell", CELL_OUTPUTS),
        **_variants(lambda run, x, state: run.layer(x, state, **edits), "lstm", LSTM_OUTPUTS),
    }


def _zeros_if_none(run, x, state):
    if state is not None:
        return state
    zeros = x.new_zeros(x.shape[0], run.hidden_size)
    return zeros, zeros


def _sigmoid_candidate(run, x, state):
    """sigmoid(z) = (1 + tanh(z / 2)) / 2, so f*c + i*sigmoid(z_g) is the mean of two torch
    cells' c: one with g's pre-activation halved, one with g pinned at 1. A third cell with
    f pinned open and i shut passes that c through, and gives o * tanh(c)."""
    h, c = _zeros_if_none(run, x, state)
    c_half = run.step(x, (h, c), scale={"g": 0.5})[1]
    c_one = run.step(x, (h, c), pin={"g": 1})[1]
    c_next = (c_half + c_one) / 2
    h_next = run.step(x, (h, c_next), pin={"f": 1, "i": -1})[0]
    return h_next, c_next


def _output_without_tanh(run, x, state):
    """o * c from torch's o * tanh(c): times c / tanh(c) (1 where c is 0)."""
    h, c = run.step(x, state)
    nonzero = c != 0
    safe = torch.where(nonzero, c, torch.ones_like(c))
    return torch.where(nonzero, h * safe / torch.tanh(safe), h), c


def _steps_from_initial_state(run, x, state):
    """Every time step from the initial state: one cell call over all T * B rows."""
    t, b = x.shape[0], x.shape[1]
    h0, c0 = _zeros_if_none(run, x[0], state)
    h, c = run.step(x.reshape(t * b, -1), (h0.repeat(t, 1), c0.repeat(t, 1)))
    outputs = h.reshape(t, b, -1)
    return outputs, (outputs[-1], c.reshape(t, b, -1)[-1])


def _state_detached(run, x, state):
    """Each step from the true previous state, detached: torch's LSTM over each prefix
    of x gives the states, one cell call over all T * B rows takes one step from each."""
    t, b = x.shape[0], x.shape[1]
    h0, c0 = _zeros_if_none(run, x[0], state)
    with torch.no_grad():
        before = [run.layer(x[:k], (h0, c0))[1] for k in range(1, t)]
    h_prev = torch.cat([h0, *(h for h, _ in before)])
    c_prev = torch.cat([c0, *(c for _, c in before)])
    h, c = run.step(x.reshape(t * b, -1), (h_prev, c_prev))
    outputs = h.reshape(t, b, -1)
    return outputs, (outputs[-1], c.reshape(t, b, -1)[-1])


MISCONCEPTIONS = Misconceptions(
    "exercises/section1/README.md",
    Misconception(
        "gate_order_figo",
        "gates read in the order f, i, g, o",
        "torch stacks the gate rows i, f, g, o: gates.chunk(4, dim=1) gives i, f, g, o in that order",
        readme="LSTM gate layout: order and biases",
        variants=_edited(order="figo"),
    ),
    Misconception(
        "gate_order_ifog",
        "gates read in the order i, f, o, g",
        "torch stacks the gate rows i, f, g, o (the candidate g third, the output gate o last), "
        "not i, f, o, g as some write-ups do",
        readme="LSTM gate layout: order and biases",
        variants=_edited(order="ifog"),
    ),
    Misconception(
        "bias_hh_missing",
        "bias_hh not added",
        "torch adds both biases to every gate: x @ W_ih^T + bias_ih + h @ W_hh^T + bias_hh",
        readme="LSTM gate layout: order and biases",
        variants=_edited(bias_hh=False),
    ),
    Misconception(
        "input_gate_dropped",
        "input gate not applied",
        "the candidate is written through the input gate: c' = f * c + i * g, not f * c + g",
        readme="The LSTM cell update",
        variants=_edited(pin={"i": 1}),
    ),
    Misconception(
        "sigmoid_candidate",
        "sigmoid on the candidate g",
        "i, f and o are sigmoids (0..1); the candidate g is a tanh (-1..1), so the cell can also be lowered",
        readme="The LSTM cell update",
        variants=_variants(_sigmoid_candidate, "LSTMCell", CELL_OUTPUTS),
    ),
    Misconception(
        "output_tanh_dropped",
        "no tanh on the new cell state",
        "h' = o * tanh(c'): the cell state is squashed before the output gate",
        readme="The LSTM cell update",
        variants=_variants(_output_without_tanh, "LSTMCell", CELL_OUTPUTS),
    ),
    Misconception(
        "state_not_carried",
        "every step starts from the initial state",
        "each step's (h, c) is the next step's state: the recurrence is what carries memory",
        readme="LSTM state: the default and across time steps",
        variants=_variants(_steps_from_initial_state, "lstm", LSTM_OUTPUTS),
    ),
    Misconception(
        "initial_state_ignored",
        "lstm() ignores the state it is given",
        "lstm(x, cell, state) starts from that (h_0, c_0); only state=None means zeros",
        readme="LSTM state: the default and across time steps",
        variants=_variants(lambda run, x, state: run.layer(x, None), "lstm", LSTM_OUTPUTS),
    ),
    Misconception(
        "state_detached",
        "the state detached between steps",
        "gradients flow back through every step: no .detach() on the (h, c) that one step "
        "passes to the next (truncated backpropagation detaches between batches)",
        readme="LSTM state: the default and across time steps",
        variants=_variants(_state_detached, "lstm", LSTM_OUTPUTS),
    ),
    Misconception(
        "default_state_float32",
        "the default state is float32",
        "state=None means zeros in x's dtype: x.new_zeros(B, H), not torch.zeros(B, H)",
        readme="LSTM state: the default and across time steps",
    ),
    Misconception(
        "bias_flag_ignored",
        "biases created even with bias=False",
        "with bias=False the cell has no bias parameters at all: register_parameter('bias_ih', None)",
        readme="LSTM parameters and initialisation",
        variants={
            "LSTMCell parameters": lambda i, h, bias: parameter_shapes(nn.LSTMCell(i, h, bias=True)),
        },
    ),
    Misconception(
        "init_bound_input_size",
        "initialised with 1/sqrt(input_size)",
        "torch's LSTM draws every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)); "
        "nn.Linear's fan-in rule does not apply",
        readme="LSTM parameters and initialisation",
    ),
    Misconception(
        "loop_over_batch",
        "a Python loop over the batch",
        "one matrix product per weight computes all four gates for every row at once",
        readme="LSTM speed",
        kind="speed",
    ),
)


def init_problem(cell: nn.Module, input_size: int, hidden_size: int) -> str | None:
    """What is wrong with a freshly made cell's parameter values, or None: each must look
    uniform in [-1/sqrt(hidden_size), 1/sqrt(hidden_size)]. A cell whose values all lie
    within 1/sqrt(input_size) instead is diagnosed as init_bound_input_size."""
    bound, fan_in_bound = 1 / math.sqrt(hidden_size), 1 / math.sqrt(input_size)
    values = {name: p.detach().to(torch.float64) for name, p in cell.named_parameters()}
    bad = [name for name, p in values.items() if p.abs().max() > bound * (1 + 1e-6)]
    # Too narrow (zeros, a tiny normal): judged on all values together, and only from 16 values
    # up. Their expected std is bound/sqrt(3); none of 5e7 draws of 16 uniform values had one
    # under bound/8, while 8 values per tensor at bound/4 failed 0.4% of the time (flaky CI).
    pooled = torch.cat([p.flatten() for p in values.values()])
    if not bad and pooled.numel() >= 16 and pooled.std() < bound / 8:
        bad = [max(values, key=lambda name: values[name].numel())]
    if not bad:
        return None
    p = values[bad[0]]
    message = (
        f"{bad[0]} of LSTMCell({input_size}, {hidden_size}) has values in [{p.min():.3f}, {p.max():.3f}] "
        f"(std {p.std():.3f}); expected uniform values in [-{bound:.3f}, {bound:.3f}] = +-1/sqrt(hidden_size)"
    )
    fan_in = all(p.abs().max() <= fan_in_bound * (1 + 1e-6) for p in values.values())
    if fan_in and input_size != hidden_size:
        raise MISCONCEPTIONS.failure("init_bound_input_size", message)
    return message


def check_one_call(impl, draw) -> None:
    """One small call of the learner's lstm over its LSTMCell, checked against nn.LSTM's: the generated
    ban test (``test_no_library_shortcuts``, llmkit.plugin.bans) makes it after its static
    scan, with banned calls trapped, so code that does nothing earns nothing there."""
    reference = torch_cell(3, 4, True, torch.float32, draw.seed)
    cell = impl.LSTMCell(3, 4, bias=True)
    cell.load_state_dict(learner_state_dict(reference))
    x = draw.tensor(3, 2, 3)
    with torch.no_grad():
        out, _ = impl.lstm(x, cell)
        want, _ = lstm_oracle(reference)(x)
    assert_close(out, want, name="lstm outputs")


# --- the figure: the learner's gates, read off their own cell ------------------------


def _probe(impl, params, hidden, x, state, **pin) -> tuple[torch.Tensor, torch.Tensor]:
    """The learner's cell, holding ``params`` with some gates pinned, at (x, state)."""
    cell = impl.LSTMCell(x.shape[-1], hidden)
    cell.load_state_dict(edit_gates(params, hidden, pin=pin))
    return cell(x, state)


def figure(impl) -> Figure:
    """The four gates of ``impl``'s LSTM over a sequence with two input pulses, and its
    cell state. The gates are read off the learner's own cell: their lstm() gives the state
    before every step, and their cell, loaded with some gates pinned open or shut (a
    pre-activation of +-100), shows one gate at a time: with g pinned at 1 and c = 0,
    c' = i; with i pinned at 1, c' = g; with i shut and c = 1, c' = f; with i shut, f open
    and c = 100, h' = o * tanh(100) = o."""
    steps, inputs, hidden = 24, 3, 8
    pulses = {3: (2.5, 0.0, 0.0), 12: (0.0, -2.5, 1.5)}
    x = torch.zeros(steps, 1, inputs)
    for t, value in pulses.items():
        x[t, 0] = torch.tensor(value)
    x[:, 0, 2] += 0.5 * torch.sin(torch.arange(steps) / 3.0)
    reference = torch_cell(inputs, hidden, True, torch.float32, seed=7)
    params = learner_state_dict(reference)
    params["bias_ih"][hidden : 2 * hidden] += 1.5  # forget gates open a little: memory shows
    cell = impl.LSTMCell(inputs, hidden)
    cell.load_state_dict(params)
    with torch.no_grad():
        # The state after each step, from the learner's lstm() over each prefix of the sequence.
        states = [impl.lstm(x[: t + 1], cell)[1] for t in range(steps)]
        h = torch.cat([torch.zeros(1, hidden)] + [s[0] for s in states[:-1]])
        c = torch.cat([torch.zeros(1, hidden)] + [s[1] for s in states[:-1]])
        x_t, zeros, ones = x[:, 0], torch.zeros_like(c), torch.ones_like(c)
        gates = {
            "input gate i": _probe(impl, params, hidden, x_t, (h, zeros), g=1)[1],
            "forget gate f": _probe(impl, params, hidden, x_t, (h, ones), i=-1)[1],
            "candidate g": _probe(impl, params, hidden, x_t, (h, zeros), i=1)[1],
            "output gate o": _probe(impl, params, hidden, x_t, (h, ones * SATURATED), i=-1, f=1)[0],
        }
        cell_state = torch.cat([s[1] for s in states])
    fig, axes = new_figure(12.5, 4.2, ncols=5)
    panels = [*gates.items(), ("cell state c after the step", cell_state)]
    c_max = max(float(torch.as_tensor(cell_state).abs().max()), 1e-6)
    for ax, (title, values) in zip(axes, panels):
        sigmoid_gate = title.endswith(("i", "f", "o"))
        limits = (0.0, 1.0) if sigmoid_gate else (-1.0, 1.0) if title == "candidate g" else (-c_max, c_max)
        image = ax.imshow(
            torch.as_tensor(values).detach().numpy(),
            vmin=limits[0],
            vmax=limits[1],
            cmap="viridis" if sigmoid_gate else "RdBu_r",
            aspect="auto",
            interpolation="nearest",
        )
        ax.set_yticks([0, *pulses, steps - 1])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("hidden unit")
        fig.colorbar(image, ax=ax, orientation="horizontal", shrink=0.85, pad=0.02)
    axes[0].set_ylabel("time step (input pulses at 3 and 12)")
    return png(fig), "Your LSTM's gates and cell state over a sequence with input pulses at steps 3 and 12"
