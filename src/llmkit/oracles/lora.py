"""Oracles and toy models for exercise 5.1 (LoRA).

* :func:`lora_output` — the LoRA formula written out in float64, the oracle for
  a layer's forward pass.
* :class:`TinyTransformer` — a small decoder with the usual projection names
  (q_proj, k_proj, v_proj, o_proj, up_proj, down_proj, lm_head) for target
  matching and parameter counts.
* :func:`toy_task` — a frozen random MLP and a "teacher" that differs from it by
  a low-rank change of two weight matrices: LoRA can close that gap exactly.
* :func:`finetune` — plain Adam on a module's trainable parameters, written so
  that the module is only called (forward, :func:`value_and_grad`,
  ``load_state_dict``) and only tensors come back.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmkit.checks import as_plain_tensor, value_and_grad


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


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.o_proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape

        def heads(t):
            return t.view(b, length, self.n_heads, d // self.n_heads).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, length, d))


class MLP(nn.Module):
    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.up_proj = nn.Linear(d_model, d_ff)
        self.down_proj = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.up_proj(x)))


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, d_ff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyTransformer(nn.Module):
    """A pre-norm decoder: embed -> blocks (attn.{q,k,v,o}_proj, mlp.{up,down}_proj) -> lm_head."""

    def __init__(
        self,
        vocab: int = 50,
        d_model: int = 32,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 64,
        context: int = 16,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[-1], device=tokens.device)
        x = self.embed(tokens) + self.pos(positions)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


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


class ToyMLP(nn.Module):
    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.fc2(torch.tanh(self.fc1(x)))))


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
