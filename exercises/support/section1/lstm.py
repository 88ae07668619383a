"""Support for exercise 1.3 (LSTM): oracles built on torch.nn.LSTMCell and torch.nn.LSTM,
and the figure."""

from __future__ import annotations

import torch
from torch import nn

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import assert_close


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
        want, _ = torch_lstm(reference)(x)
    assert_close(out, want, name="lstm outputs")


def figure() -> Figure:
    """torch.nn.LSTMCell's cell state after one input pulse, two forget-gate biases."""
    torch.manual_seed(0)
    steps, hidden = 40, 6
    x = torch.zeros(steps, 1, 3)
    x[3] = 2.0  # one input pulse, then silence
    fig, axes = new_figure(9.0, 3.0, ncols=2)
    for ax, forget_bias in zip(axes, (0.0, 3.0)):
        cell = torch.nn.LSTMCell(3, hidden)
        with torch.no_grad():
            cell.bias_ih[hidden : 2 * hidden] += forget_bias  # the forget gate's slice (i, f, g, o)
            h, c, trace = torch.zeros(1, hidden), torch.zeros(1, hidden), []
            for t in range(steps):
                h, c = cell(x[t], (h, c))
                trace.append(c[0].clone())
        ax.plot(torch.stack(trace).numpy())
        ax.axvline(3, color="0.6", ls=":")
        ax.set_xlabel("time step")
        ax.set_title(f"cell state c per unit, forget-gate bias {forget_bias:g}", fontsize=10)
    axes[0].set_ylabel("c")
    return png(fig), "LSTM cell state after one input pulse, with a small and a large forget-gate bias"
