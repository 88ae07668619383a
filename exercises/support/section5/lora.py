"""Support for exercise 5.1 (LoRA): oracles, toy models and the figure.

* :func:`lora_output` — the LoRA formula written out in float64, the oracle for
  a layer's forward pass.
* :func:`tiny_transformer` — a seeded :class:`~llmkit.toymodels.TinyTransformer`,
  a small decoder with the usual projection names (q_proj, k_proj, v_proj,
  o_proj, up_proj, down_proj, lm_head) for target matching and parameter counts.
* :func:`toy_task` — a frozen random MLP and a "teacher" that differs from it by
  a low-rank change of two weight matrices: LoRA can close that gap exactly.
* :func:`finetune` — plain Adam on a module's trainable parameters, written so
  that the module is only called (forward, :func:`value_and_grad`,
  ``load_state_dict``) and only tensors come back.

The models' architectures live in :mod:`llmkit.toymodels`, in the engine: sandboxed,
graders send these models to the worker pickled, and the worker rebuilds them from
there (it never sees this file).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from llmkit.checks import as_plain_tensor, value_and_grad
from llmkit.figures import Figure, new_figure, png
from llmkit.toymodels import TinyTransformer, ToyMLP


def lora_output(x, weight, bias, lora_A, lora_B, scaling: float) -> torch.Tensor:
    """base(x) + scaling * x A^T B^T, computed in float64 and cast back to x's dtype."""
    x64 = x.to(torch.float64)
    out = x64 @ weight.to(torch.float64).T
    if bias is not None:
        out = out + bias.to(torch.float64)
    out = out + scaling * (x64 @ lora_A.to(torch.float64).T) @ lora_B.to(torch.float64).T
    return out.to(x.dtype)


def random_linear(
    in_features: int, out_features: int, bias: bool, dtype: torch.dtype, seed: int
) -> nn.Linear:
    """An ``nn.Linear`` with seeded weights of the usual scale and a non-zero bias."""
    gen = torch.Generator().manual_seed(seed)
    layer = nn.Linear(in_features, out_features, bias=bias, dtype=dtype)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) / math.sqrt(in_features))
    return layer


# --- a transformer-like model ------------------------------------------------


def tiny_transformer(seed: int, dtype: torch.dtype = torch.float32, **sizes) -> TinyTransformer:
    """A seeded TinyTransformer with non-trivial LayerNorm parameters."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyTransformer(**sizes).to(dtype)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith(("ln1.weight", "ln2.weight", "ln_f.weight")):
                    p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def linear_shapes(model: nn.Module) -> dict[str, tuple[int, int]]:
    """Qualified name -> (in_features, out_features) of every nn.Linear in ``model``."""
    return {
        name: (m.in_features, m.out_features) for name, m in model.named_modules() if isinstance(m, nn.Linear)
    }


# --- the fine-tuning toy task ------------------------------------------------


@dataclass
class ToyTask:
    model: ToyMLP  # the frozen "pre-trained" model to adapt
    x: torch.Tensor  # (n, d_in) inputs
    y: torch.Tensor  # (n, d_out) targets from the teacher
    targets: tuple[str, ...]  # the layers the teacher changed


def toy_task(seed: int, n: int = 256, d_in: int = 16, hidden: int = 32, d_out: int = 8, rank: int = 2):
    """A seeded regression task that a rank-``rank`` change of fc1 and fc2 solves exactly.

    The teacher is the model with ``W += U V`` (U, V random, rank ``rank``) in
    fc1 and fc2; the targets are the teacher's outputs. Fine-tuning fc1 and fc2
    with LoRA of rank >= ``rank`` can reach zero loss; the head stays as it is.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ToyMLP(d_in, hidden, d_out)
    teacher = copy.deepcopy(model)
    with torch.no_grad():
        for layer in (teacher.fc1, teacher.fc2):
            out_f, in_f = layer.weight.shape
            u = torch.randn(out_f, rank, generator=gen)
            v = torch.randn(rank, in_f, generator=gen)
            layer.weight.add_(u @ v / math.sqrt(in_f * rank))
        x = torch.randn(n, d_in, generator=gen)
        y = teacher(x)
    return ToyTask(model.eval(), x, y, ("fc1", "fc2"))


def mse(out: torch.Tensor, y: torch.Tensor) -> float:
    return float(((as_plain_tensor(out) - y) ** 2).mean())


def finetune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float) -> list[float]:
    """Adam on ``model``'s trainable parameters for the MSE loss; the losses before each step and at the end.

    The optimiser (plain Adam, betas 0.9 / 0.999, eps 1e-8) holds grader-side
    copies of the trainable parameters: each step calls the model, gets the
    gradients from :func:`value_and_grad` (weights d loss / d output, so the
    parameter gradients are those of the MSE) and writes the new values back
    with ``load_state_dict(strict=False)``. An integer ``x`` (token ids) is passed
    as ``model(tokens=x)``.
    """
    inputs, kwargs = ([x], {}) if x.is_floating_point() else ([], {"tokens": x})
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    params: dict[str, torch.Tensor] = {}
    moments: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    losses = []
    with torch.no_grad():
        for step in range(1, steps + 1):
            out = as_plain_tensor(model(*inputs, **kwargs))
            losses.append(mse(out, y))
            weights = 2.0 * (out - y) / out.numel()
            with torch.enable_grad():
                grads = value_and_grad(model, inputs, weights, kwargs=kwargs).params
            if not params:
                state = model.state_dict()
                params = {name: as_plain_tensor(state[name]) for name in grads}
                moments = {name: (torch.zeros_like(p), torch.zeros_like(p)) for name, p in params.items()}
            for name, p in params.items():
                g = grads[name].to(p.dtype)
                m, v = moments[name]
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
            model.load_state_dict({name: p.clone() for name, p in params.items()}, strict=False)
        losses.append(mse(as_plain_tensor(model(*inputs, **kwargs)), y))
    return losses


def figure() -> Figure:
    """Trainable parameters of LoRA by rank against full fine-tuning."""
    d = 4096
    ranks = [1, 2, 4, 8, 16, 32, 64]
    fig, ax = new_figure(7.0, 3.4)
    ax.bar([str(r) for r in ranks], [r * 2 * d for r in ranks], color="#1a73e8", label="LoRA: r·(in + out)")
    ax.axhline(d * d, color="#b3261e", ls="--", label=f"full fine-tuning: {d}·{d} = {d * d / 1e6:.1f} M")
    ax.set_yscale("log")
    ax.set_xlabel("rank r")
    ax.set_ylabel("trainable parameters")
    ax.set_title(f"Trainable parameters for one {d} × {d} projection", fontsize=10)
    ax.legend(fontsize=8, loc="center right")
    return png(fig), "Trainable parameters of LoRA by rank against full fine-tuning"
