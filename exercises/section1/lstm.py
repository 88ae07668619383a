"""Exercise 1.3 — an LSTM cell, and an LSTM layer that unrolls it over time.

Replace every ``raise NotImplementedError`` with your implementation, then run

    pytest exercises/section1/test_lstm.py      (or: llmkit check 1.3)

Banned here (a static scan and a runtime trap enforce it): torch's own LSTMs —
``nn.LSTM``, ``nn.LSTMCell`` and their back-ends ``torch.lstm``,
``torch.lstm_cell``, ``torch._VF.lstm`` and ``torch._VF.lstm_cell``.
Everything else in torch (matmul, sigmoid, tanh, chunk, stack, nn.Parameter,
nn.init, ...) is fine.

The cell, for input x (B, I), hidden state h (B, H) and cell state c (B, H):

    i = sigmoid(x W_ii^T + b_ii + h W_hi^T + b_hi)     input gate:  how much new to write
    f = sigmoid(x W_if^T + b_if + h W_hf^T + b_hf)     forget gate: how much old to keep
    g =    tanh(x W_ig^T + b_ig + h W_hg^T + b_hg)     candidate values
    o = sigmoid(x W_io^T + b_io + h W_ho^T + b_ho)     output gate
    c' = f * c + i * g
    h' = o * tanh(c')

Like torch, the four gates' weights are stacked into one matrix, in the order
i, f, g, o: ``weight_ih = [W_ii; W_if; W_ig; W_io]`` (4H, I), so one matrix
product computes all four gates at once.
"""

from __future__ import annotations

import math  # noqa: F401

import torch
from torch import nn


class LSTMCell(nn.Module):
    """Equivalent to ``torch.nn.LSTMCell(input_size, hidden_size, bias)`` with the same weights.

    Parameters (names and shapes matter: the tests copy torch's weights into them
    with ``load_state_dict`` and compare gradients by name):
        weight_ih: (4 * hidden_size, input_size)
        weight_hh: (4 * hidden_size, hidden_size)
        bias_ih:   (4 * hidden_size,)      only when bias=True
        bias_hh:   (4 * hidden_size,)      only when bias=True
    Rows are stacked gate by gate in the order i, f, g, o (rows 0..H-1 are the
    input gate, H..2H-1 the forget gate, and so on). With bias=False the module
    has no bias parameters at all (``self.register_parameter("bias_ih", None)``).
    Initialise every parameter uniformly in [-1/sqrt(hidden_size), 1/sqrt(hidden_size)],
    as torch does.

    ``forward(x, state=None) -> (h, c)``:
        x: (B, I); state: a tuple (h, c) of two (B, H) tensors, or None for zeros.
        Returns the new (h, c), each (B, H), in x's dtype. Works for float32 and
        float64 and for B = 1; inputs are not modified. Gradients flow to x, to
        the state and to every parameter (torch autograd does this for you as
        long as you stay with torch operations).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


def lstm(
    x: torch.Tensor, cell: LSTMCell, state: tuple[torch.Tensor, torch.Tensor] | None = None
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Run ``cell`` over a sequence, like a one-layer ``torch.nn.LSTM``.

    x: (T, B, I), time first; state: (h_0, c_0), each (B, H), or None for zeros.
    Returns ``(outputs, (h_n, c_n))``: outputs (T, B, H) holds h after every
    step; h_n and c_n are the state after the last step (h_n equals outputs[-1]).
    Each step's output state is the next step's input state.
    """
    raise NotImplementedError
