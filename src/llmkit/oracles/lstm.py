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


def lstm_param_name(name: str) -> str:
    """``weight_ih_l0`` (an ``nn.LSTM`` parameter) -> ``weight_ih`` (the cell's name)."""
    return name.removesuffix("_l0")
