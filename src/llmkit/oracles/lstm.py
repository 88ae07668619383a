"""Oracles for exercise 1.3 (LSTM), built on torch.nn.LSTMCell and torch.nn.LSTM."""

from __future__ import annotations

import torch
from torch import nn


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
    """A one-layer ``nn.LSTM`` (time first) with ``cell``'s weights."""
    layer = nn.LSTM(cell.input_size, cell.hidden_size, bias=cell.bias).to(cell.weight_ih.dtype)
    with torch.no_grad():
        for name, p in cell.named_parameters():
            getattr(layer, f"{name}_l0").copy_(p)
    return layer


class CellOutputs(nn.Module):
    """A cell (the learner's or ``nn.LSTMCell``) as one tensor-valued function of
    (x, h0, c0): ``cat([h, c], dim=-1)``, so value_and_grad can take gradients with
    respect to x, the state and, by name (``cell.weight_ih`` ...), every parameter."""

    def __init__(self, cell: nn.Module):
        super().__init__()
        self.cell = cell

    def forward(self, x, h0, c0):
        h, c = self.cell(x, (h0, c0))
        return torch.cat([h, c], dim=-1)


class SequenceOutputs(nn.Module):
    """``lstm(x, cell, (h0, c0))`` as one tensor: ``cat([outputs.flatten(), h_n.flatten(),
    c_n.flatten()])``. ``run`` is the learner's ``lstm`` function, or None for ``nn.LSTM``
    (``cell`` is then an ``nn.LSTM``)."""

    def __init__(self, cell: nn.Module, run=None):
        super().__init__()
        self.cell = cell
        self.run = run

    def forward(self, x, h0, c0):
        if self.run is None:
            out, (h_n, c_n) = self.cell(x, (h0.unsqueeze(0), c0.unsqueeze(0)))
            h_n, c_n = h_n[0], c_n[0]
        else:
            out, (h_n, c_n) = self.run(x, self.cell, (h0, c0))
        return torch.cat([out.flatten(), h_n.flatten(), c_n.flatten()])


def lstm_param_name(name: str) -> str:
    """``cell.weight_ih_l0`` (an nn.LSTM inside SequenceOutputs) -> ``cell.weight_ih``."""
    return name.removesuffix("_l0")
