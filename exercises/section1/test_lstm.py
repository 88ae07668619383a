"""Public tests for exercise 1.3 (LSTM). Run: pytest exercises/section1

Your cell and your lstm() are compared with torch.nn.LSTMCell and torch.nn.LSTM
carrying the same weights, on a few drawn cases each (batch sizes, input and hidden
sizes, with and without bias, float32 and float64, with and without a state). When a
check fails it says which known mistake your output looks like. lstm()'s gradients are
compared too (float64). The hidden graders draw more cases, also compare the cell's
gradients and time your cell against torch's.
"""

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmkit.testing import CheckFailure, Draw, assert_close, check_equal, load_support, value_and_grad

pytestmark = pytest.mark.exercise("1.3")
support = load_support("1.3")
mistakes = support.MISCONCEPTIONS

GATES_HINT = (
    "gates in the order i, f, g, o; sigmoid for i, f, o and tanh for g; c' = f*c + i*g, h' = o*tanh(c')"
)
STEPS_HINT = "feed each step's (h, c) into the next step and stack the h's into (T, B, H)"
EXAMPLE = dict(b=2, i=3, h=4, bias=True, dtype=torch.float32, seed=0)


@settings(max_examples=6)
@given(i=support.sizes, h=support.sizes, bias=st.booleans())
@example(i=3, h=5, bias=True)
@example(i=3, h=5, bias=False)
def test_parameters_are_named_like_torch(impl, i, h, bias):
    check_equal(
        support.parameter_shapes(impl.LSTMCell(i, h, bias=bias)),
        support.parameter_shapes(torch.nn.LSTMCell(i, h, bias=bias)),
        name=f"parameters of LSTMCell({i}, {h}, bias={bias}) (name: shape)",
        hint="weight_ih (4H, I), weight_hh (4H, H) and, only with bias=True, bias_ih and bias_hh (4H,)",
        suspects=mistakes.on("LSTMCell parameters", i, h, bias),
    )


def test_parameters_are_initialised_like_torch(impl):
    for i, h in [(2, 9), (9, 2)]:
        problem = support.init_problem(impl.LSTMCell(i, h), i, h)
        if problem is not None:
            raise CheckFailure(problem, hint="nn.init.uniform_(p, -1/sqrt(hidden_size), 1/sqrt(hidden_size))")


@settings(max_examples=10)
@given(case=support.cell_case(), with_state=st.booleans())
@example(case=EXAMPLE, with_state=True)
def test_cell_matches_torch(impl, case, with_state):
    cell, reference = support.cell_pair(impl, case)
    rng = Draw(case["seed"] + 1)
    x = rng.tensor(case["b"], case["i"], dtype=case["dtype"], scale=1.5)
    state = support.draw_state(rng, case) if with_state else None
    h, c = cell(x, state)
    want_h, want_c = reference(x, state)
    where = support.describe(case, state="(h, c)" if with_state else None)
    for name, got, want in [("c", c, want_c), ("h", h, want_h)]:
        assert_close(
            got,
            want,
            name=f"{name} from {where}",
            hint=GATES_HINT,
            suspects=mistakes.on("LSTMCell", reference, x, state, out=name),
        )


def test_default_state_is_zeros_in_x_dtype(impl, draw):
    case = dict(EXAMPLE, dtype=torch.float64, seed=draw.seed)
    cell, reference = support.cell_pair(impl, case)
    x = draw.tensor(2, 3, dtype=torch.float64)
    zeros = torch.zeros(2, 4, dtype=torch.float64)
    try:
        h, c = cell(x)
    except Exception as exc:
        cell(x, (zeros, zeros))  # a given float64 state works, so the default state is the problem
        raise mistakes.failure(
            "default_state_float32",
            f"a float64 LSTMCell raised {type(exc).__name__} with state=None ({exc}), "
            "but not with state=(zeros, zeros) in float64",
        ) from None
    want_h, want_c = reference(x)
    for name, got, want in [("c", c, want_c), ("h", h, want_h)]:
        assert_close(
            got,
            want,
            name=f"{name} of a float64 LSTMCell with state=None",
            hint="state=None means h = c = zeros of shape (B, H), in x's dtype",
            suspects=mistakes.on("LSTMCell", reference, x, None, out=name),
        )


@settings(max_examples=8)
@given(case=support.cell_case(), t=st.integers(1, 5), with_state=st.booleans())
@example(case=EXAMPLE, t=4, with_state=True)
def test_lstm_matches_torch(impl, case, t, with_state):
    cell, reference = support.cell_pair(impl, case)
    rng = Draw(case["seed"] + 3)
    x = rng.tensor(t, case["b"], case["i"], dtype=case["dtype"])  # (T, B, I)
    state = support.draw_state(rng, case) if with_state else None
    outputs, (h_n, c_n) = impl.lstm(x, cell, state)
    want = support.lstm_oracle(reference)(x, state)
    where = f"lstm over T={t} steps with {support.describe(case, state='(h_0, c_0)' if with_state else None)}"
    for name, got in [("outputs", outputs), ("h_n", h_n), ("c_n", c_n)]:
        assert_close(
            got,
            support.LSTM_OUTPUTS[name](want),
            name=f"{name} of {where}",
            hint=STEPS_HINT,
            suspects=mistakes.on("lstm", reference, x, state, out=name),
        )


@settings(max_examples=3)
@given(case=support.cell_case(), t=st.integers(2, 4))
@example(case=dict(EXAMPLE, dtype=torch.float64), t=3)
def test_lstm_gradients_match_torch(impl, case, t):
    case = {**case, "dtype": torch.float64}
    cell, reference = support.cell_pair(impl, case)
    rng = Draw(case["seed"] + 4)
    x = rng.tensor(t, case["b"], case["i"], dtype=torch.float64)
    state = support.draw_state(rng, case)
    weights = (rng.tensor(t, case["b"], case["h"], dtype=torch.float64), support.draw_state(rng, case))
    got = value_and_grad(impl.lstm, [x, cell, state], weights, params_of=cell)
    want = value_and_grad(support.lstm_oracle(reference), [x, state], weights)
    where = f"lstm over T={t} steps with {support.describe(case, state='(h_0, c_0)')}"
    (gx, _, (gh0, gc0)), (wx, (wh0, wc0)) = got.inputs, want.inputs
    pairs = [("x", gx, wx), ("h_0", gh0, wh0), ("c_0", gc0, wc0)]
    pairs += [(name, got.params.get(name), w) for name, w in want.params.items()]
    for name, g, w in pairs:
        assert_close(
            g,
            w,
            name=f"gradient w.r.t. {name} of {where}",
            hint="let autograd see every step: no .detach(), .item() or torch.no_grad() inside lstm()",
            suspects=mistakes.on("lstm gradient", reference, x, state, weights, wrt=name),
        )
