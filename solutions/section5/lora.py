"""Exercise 5.1 — LoRA layer (reference solution)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if r < 1:
            raise ValueError(f"the rank r must be at least 1, got {r}")
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.r = r
        self.alpha = alpha
        self.scaling = alpha / r
        self.in_features = base.in_features
        self.out_features = base.out_features
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        # A starts like an nn.Linear weight, B at zero: the product B A is zero,
        # so a fresh adapter leaves the model unchanged, yet gradients reach B at once.
        self.lora_A = nn.Parameter(torch.empty(r, self.in_features, **like))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, r, **like))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """The update the adapter adds to the base weight: (alpha / r) * B @ A, shape (out, in)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:  # the update already lives in base.weight
            return out
        # Two thin matmuls (in -> r -> out) instead of forming the (out, in) update.
        return out + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base.weight.add_(self.delta_weight())
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight.sub_(self.delta_weight())
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"


def apply_lora(
    model: nn.Module, target_modules: Iterable[str], r: int, alpha: float, dropout: float = 0.0
) -> nn.Module:
    targets = {target_modules} if isinstance(target_modules, str) else set(target_modules)
    linears = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    matches = [name for name in linears if name.rsplit(".", 1)[-1] in targets]
    if not matches:
        raise ValueError(
            f"no nn.Linear layer matches target_modules {sorted(targets)}; "
            f"the model's Linear layers are {sorted(linears) or 'none'}"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    for name in matches:  # collected first: replacing while iterating named_modules is unsafe
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(linears[name], r, alpha, dropout))
    return model


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
