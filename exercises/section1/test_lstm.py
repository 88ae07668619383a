"""Public tests for exercise 1.3 (LSTM). Run: pytest exercises/section1

Your cell and your lstm() are compared with torch.nn.LSTMCell and
torch.nn.LSTM carrying the same weights. The hidden graders also draw random
sizes and dtypes, compare gradients, and time your cell against torch's.
"""

import pytest
import torch

from llmkit.testing import CheckFailure, assert_close, load_support

pytestmark = pytest.mark.exercise("1.3")
support = load_support("1.3")


def test_parameters_are_named_like_torch(impl):
    got = {name: tuple(p.shape) for name, p in impl.LSTMCell(3, 5).named_parameters()}
    want = {name: tuple(p.shape) for name, p in torch.nn.LSTMCell(3, 5).named_parameters()}
    if got != want:
        raise CheckFailure(
            f"LSTMCell(3, 5) parameters: expected {want}, got {got}",
            hint="weight_ih (4H, I), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,) as nn.Parameter",
        )


def test_cell_matches_torch(impl, draw):
    reference = support.torch_cell(4, 3, bias=True, dtype=torch.float32, seed=draw.seed)
    cell = impl.LSTMCell(4, 3)
    cell.load_state_dict(support.learner_state_dict(reference))
    x, h0, c0 = draw.tensor(2, 4), draw.tensor(2, 3), draw.tensor(2, 3)
    h, c = cell(x, (h0, c0))
    want_h, want_c = reference(x, (h0, c0))
    hint = (
        "gates in the order i, f, g, o; sigmoid for i, f, o and tanh for g; c' = f*c + i*g, h' = o*tanh(c')"
    )
    assert_close(c, want_c, name="c from LSTMCell", hint=hint)
    assert_close(h, want_h, name="h from LSTMCell", hint=hint)


def test_cell_default_state_is_zeros(impl, draw):
    reference = support.torch_cell(4, 3, bias=True, dtype=torch.float32, seed=draw.seed)
    cell = impl.LSTMCell(4, 3)
    cell.load_state_dict(support.learner_state_dict(reference))
    x = draw.tensor(2, 4)
    h, c = cell(x)
    want_h, want_c = reference(x)
    assert_close(h, want_h, name="h with state=None", hint="state=None means h = c = zeros of shape (B, H)")
    assert_close(c, want_c, name="c with state=None", hint="state=None means h = c = zeros of shape (B, H)")


def test_lstm_matches_torch(impl, draw):
    reference = support.torch_cell(4, 3, bias=True, dtype=torch.float32, seed=draw.seed)
    cell = impl.LSTMCell(4, 3)
    cell.load_state_dict(support.learner_state_dict(reference))
    x = draw.tensor(5, 2, 4)  # (T, B, I)
    outputs, (h_n, c_n) = impl.lstm(x, cell)
    want_out, (want_h, want_c) = support.torch_lstm(reference)(x)
    hint = "feed each step's (h, c) into the next step and stack the h's into (T, B, H)"
    assert_close(outputs, want_out, name="lstm outputs", hint=hint)
    assert_close(h_n, want_h[0], name="h_n", hint=hint)
    assert_close(c_n, want_c[0], name="c_n", hint=hint)
