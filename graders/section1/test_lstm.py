"""Hidden graders for exercise 1.3 (LSTM): 16 points.

Oracles: torch.nn.LSTMCell and torch.nn.LSTM with the same weights
(exercises/support/section1/lstm.py), never the reference solution. Sizes come from
hypothesis, values from seeded generators.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    CheckFailure,
    Draw,
    assert_close,
    assert_speed,
    describe_case,
    load_support,
    unchanged,
    value_and_grad,
)

pytestmark = pytest.mark.exercise("1.3")
support = load_support("1.3")

sizes = st.integers(1, 6)
GATES_HINT = (
    "gates are stacked in the order i, f, g, o (weight_ih rows 0..H-1 are i); sigmoid for i, f, o, "
    "tanh for g; c' = f * c + i * g; h' = o * tanh(c'); both biases are added"
)
STEPS_HINT = "each step's (h, c) is the next step's state; outputs stacks every step's h into (T, B, H)"


@st.composite
def cell_case(draw_st):
    return dict(
        b=draw_st(st.integers(1, 4)),
        i=draw_st(sizes),
        h=draw_st(sizes),
        bias=draw_st(st.booleans()),
        dtype=draw_st(FLOAT_DTYPES),
        seed=draw_st(SEEDS),
    )


def cell_pair(impl, c):
    reference = support.torch_cell(c["i"], c["h"], c["bias"], c["dtype"], c["seed"])
    cell = impl.LSTMCell(c["i"], c["h"], bias=c["bias"]).to(c["dtype"])
    cell.load_state_dict(support.learner_state_dict(reference))
    return cell, reference


def describe(c, **extra):
    return describe_case("LSTMCell", c["i"], c["h"], bias=c["bias"], batch=c["b"], dtype=c["dtype"], **extra)


# --- parameters (1 point) ----------------------------------------------------


@pytest.mark.points(1)
@settings(max_examples=10)
@given(i=sizes, h=sizes, bias=st.booleans())
def test_parameters_named_and_initialised_like_torch(impl, i, h, bias):
    cell = impl.LSTMCell(i, h, bias=bias)
    got = {name: (tuple(p.shape), p.dtype) for name, p in cell.named_parameters()}
    want = {
        name: (tuple(p.shape), p.dtype) for name, p in torch.nn.LSTMCell(i, h, bias=bias).named_parameters()
    }
    if got != want:
        raise CheckFailure(
            f"LSTMCell({i}, {h}, bias={bias}) parameters (name: shape, dtype): expected {want}, got {got}",
            hint="nn.Parameter weight_ih (4H, I), weight_hh (4H, H) and, only with bias=True, "
            "bias_ih and bias_hh (4H,); float32 by default",
        )
    bound = 1 / math.sqrt(h)
    for name, p in cell.named_parameters():
        p = p.detach()
        if p.abs().max() > bound or (p.numel() > 4 and p.std() < bound / 4):
            raise CheckFailure(
                f"{name} of LSTMCell({i}, {h}) has values in [{p.min():.3f}, {p.max():.3f}]; "
                f"expected uniform values in [-{bound:.3f}, {bound:.3f}]",
                hint="initialise like torch: nn.init.uniform_(p, -1/sqrt(hidden_size), 1/sqrt(hidden_size))",
            )


# --- the cell (8 points) -----------------------------------------------------


@pytest.mark.points(4)
@settings(max_examples=50)
@given(c=cell_case(), with_state=st.booleans())
def test_cell_matches_torch(impl, c, with_state):
    cell, reference = cell_pair(impl, c)
    rng = Draw(c["seed"] + 1)
    x = rng.tensor(c["b"], c["i"], dtype=c["dtype"], scale=1.5)
    state = (rng.tensor(c["b"], c["h"], dtype=c["dtype"]), rng.tensor(c["b"], c["h"], dtype=c["dtype"]))
    with torch.no_grad():
        h, c_next = cell(x, state) if with_state else cell(x)
        want_h, want_c = reference(x, state) if with_state else reference(x)
    where = describe(c, state="(h, c)" if with_state else None)
    assert_close(c_next, want_c, name=f"c from {where}", hint=GATES_HINT)
    assert_close(h, want_h, name=f"h from {where}", hint=GATES_HINT)


@pytest.mark.points(3)
@settings(max_examples=15)
@given(c=cell_case())
def test_cell_gradients_match_torch(impl, c):
    c = {**c, "dtype": torch.float64}
    cell, reference = cell_pair(impl, c)
    rng = Draw(c["seed"] + 2)
    x, h0, c0 = (
        rng.tensor(c["b"], c["i"], dtype=torch.float64),
        *(rng.tensor(c["b"], c["h"], dtype=torch.float64) for _ in range(2)),
    )
    weights = tuple(rng.tensor(c["b"], c["h"], dtype=torch.float64) for _ in range(2))  # for (h, c)
    got = value_and_grad(cell, [x, (h0, c0)], weights)
    want = value_and_grad(reference, [x, (h0, c0)], weights)
    where = describe(c)
    for name, g, w in zip(["h", "c"], got.output, want.output):
        assert_close(g, w, name=f"{name} from {where}", hint=GATES_HINT)
    (gx, (gh0, gc0)), (wx, (wh0, wc0)) = got.inputs, want.inputs
    for name, g, w in zip(["x", "h0", "c0"], [gx, gh0, gc0], [wx, wh0, wc0]):
        assert_close(g, w, name=f"gradient w.r.t. {name} of {where}", hint=GATES_HINT)
    for name, w in want.params.items():
        assert_close(got.params.get(name), w, name=f"gradient w.r.t. {name} of {where}", hint=GATES_HINT)


@pytest.mark.points(1)
def test_cell_batch_of_one_and_inputs_unchanged(impl, draw):
    c = dict(b=1, i=3, h=4, bias=True, dtype=torch.float32, seed=draw.seed)
    cell, reference = cell_pair(impl, c)
    x, h0, c0 = draw.tensor(1, 3), draw.tensor(1, 4), draw.tensor(1, 4)
    with unchanged(x, h0, c0, names=["x", "h", "c"]):
        h, c_next = cell(x, (h0, c0))
    want_h, want_c = reference(x, (h0, c0))
    assert_close(h, want_h, name="h for a batch of 1")
    assert_close(c_next, want_c, name="c for a batch of 1")


# --- the unrolled layer (5 points) --------------------------------------------


@pytest.mark.points(3)
@settings(max_examples=40)
@given(c=cell_case(), t=st.integers(1, 6), with_state=st.booleans())
def test_lstm_matches_torch(impl, c, t, with_state):
    cell, reference = cell_pair(impl, c)
    layer = support.torch_lstm(reference)
    rng = Draw(c["seed"] + 3)
    x = rng.tensor(t, c["b"], c["i"], dtype=c["dtype"])
    h0, c0 = rng.tensor(c["b"], c["h"], dtype=c["dtype"]), rng.tensor(c["b"], c["h"], dtype=c["dtype"])
    with torch.no_grad(), unchanged(x, h0, c0, names=["x", "h_0", "c_0"]):
        if with_state:
            out, (h_n, c_n) = impl.lstm(x, cell, (h0, c0))
            want_out, (want_h, want_c) = layer(x, (h0[None], c0[None]))
        else:
            out, (h_n, c_n) = impl.lstm(x, cell)
            want_out, (want_h, want_c) = layer(x)
    where = f"lstm over T={t} steps with {describe(c, state='(h_0, c_0)' if with_state else None)}"
    assert_close(out, want_out, name=f"outputs of {where}", hint=STEPS_HINT)
    assert_close(h_n, want_h[0], name=f"h_n of {where}", hint=STEPS_HINT)
    assert_close(c_n, want_c[0], name=f"c_n of {where}", hint=STEPS_HINT)


@pytest.mark.points(2)
@settings(max_examples=10)
@given(c=cell_case(), t=st.integers(1, 5))
def test_lstm_gradients_match_torch(impl, c, t):
    c = {**c, "dtype": torch.float64}
    cell, reference = cell_pair(impl, c)
    rng = Draw(c["seed"] + 4)
    x = rng.tensor(t, c["b"], c["i"], dtype=torch.float64)
    h0, c0 = rng.tensor(c["b"], c["h"], dtype=torch.float64), rng.tensor(c["b"], c["h"], dtype=torch.float64)
    w_out = rng.tensor(t, c["b"], c["h"], dtype=torch.float64)
    w_h, w_c = (rng.tensor(c["b"], c["h"], dtype=torch.float64) for _ in range(2))
    got = value_and_grad(impl.lstm, [x, cell, (h0, c0)], (w_out, (w_h, w_c)), params_of=cell)
    layer = support.torch_lstm(reference)  # nn.LSTM: states carry a leading layer dim
    want = value_and_grad(layer, [x, (h0[None], c0[None])], (w_out, (w_h[None], w_c[None])))
    where = f"lstm over T={t} steps with {describe(c)}"
    (out, (h_n, c_n)), (want_out, (want_h, want_c)) = got.output, want.output
    assert_close(out, want_out, name=f"outputs of {where}", hint=STEPS_HINT)
    assert_close(h_n, want_h[0], name=f"h_n of {where}", hint=STEPS_HINT)
    assert_close(c_n, want_c[0], name=f"c_n of {where}", hint=STEPS_HINT)
    (gx, _, (gh0, gc0)), (wx, (wh0, wc0)) = got.inputs, want.inputs
    for name, g, w in zip(["x", "h_0", "c_0"], [gx, gh0, gc0], [wx, wh0[0], wc0[0]]):
        assert_close(g, w, name=f"gradient w.r.t. {name} of {where}", hint=STEPS_HINT)
    for name, w in want.params.items():
        name = support.lstm_param_name(name)
        assert_close(got.params.get(name), w, name=f"gradient w.r.t. {name} of {where}", hint=STEPS_HINT)


# --- rules and speed (2 points) ----------------------------------------------
# The rules' point is test_no_library_shortcuts, which the plugin generates from the
# catalog's `banned` (llmkit.plugin.bans; its call is support.check_one_call).


# learner cell time / nn.LSTMCell time, forward only, float32. Measured on 2 shared
# cores: the reference 1.1x; a Python loop over the batch rows (mutant loop_over_batch) 14x.
SPEED_LIMIT = 4.0
SPEED_SIZES = dict(b=64, i=128, h=128)


@pytest.mark.points(1)
@pytest.mark.speed
def test_cell_speed_against_torch(impl, draw):
    c = dict(SPEED_SIZES, bias=True, dtype=torch.float32, seed=draw.seed)
    cell, reference = cell_pair(impl, c)
    x = draw.tensor(c["b"], c["i"])
    state = (draw.tensor(c["b"], c["h"]), draw.tensor(c["b"], c["h"]))
    with torch.no_grad():
        assert_close(cell(x, state)[0], reference(x, state)[0], name="h", hint=GATES_HINT)
        # Fresh x, h and c for every timed call; every answer is checked against nn.LSTMCell's.
        assert_speed(
            cell,
            reference,
            lambda i: (
                draw.tensor(c["b"], c["i"]),
                (draw.tensor(c["b"], c["h"]), draw.tensor(c["b"], c["h"])),
            ),
            limit=SPEED_LIMIT,
            what=f"LSTMCell forward at B={c['b']}, I={c['i']}, H={c['h']}",
            baseline_name="nn.LSTMCell",
            hint="compute all four gates for the whole batch with one matrix product per weight "
            "(x @ weight_ih.T + h @ weight_hh.T), no Python loops over rows or gates",
            repeats=9,
        )
