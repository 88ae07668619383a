"""Exercise 5.1 — a LoRA layer: low-rank adapters for a frozen nn.Linear.

Replace every ``raise NotImplementedError`` with your implementation, then run

    pytest exercises/section5/test_lora.py      (or: llmkit check 5.1)

LoRA (Hu et al., 2021) freezes a pre-trained weight W (out x in) and learns a
low-rank update instead:

    y = base(x) + (alpha / r) * B (A x)        A: (r, in), B: (out, r), r << min(in, out)

Only A and B train: r * (in + out) numbers instead of in * out. Nothing is
banned: write it with ordinary torch (nn.Parameter, matmul, nn.Dropout,
nn.init). Do not use the ``peft`` library (it is not installed, and it is
what you are building).
"""

from __future__ import annotations

import math  # noqa: F401  (you will want math.sqrt(5))
from collections.abc import Iterable

import torch
from torch import nn


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update.

    ``LoRALinear(base, r, alpha, dropout=0.0)``

    Attributes (names matter: the tests read and load them by name):
        base:    the ``nn.Linear`` you were given, kept as is (not copied), with
                 every parameter frozen (``requires_grad=False``). Its weights
                 stay reachable as ``layer.base.weight`` / ``layer.base.bias``
                 (state-dict keys ``base.weight``, ``base.bias``).
        lora_A:  ``nn.Parameter`` of shape (r, in_features), initialised with
                 ``nn.init.kaiming_uniform_(lora_A, a=math.sqrt(5))`` — the same
                 init as an nn.Linear weight: uniform in ±1/sqrt(in_features).
        lora_B:  ``nn.Parameter`` of shape (out_features, r), initialised to zeros.
        scaling: ``alpha / r`` (a float). Not alpha: dividing by r lets you change
                 the rank without retuning alpha or the learning rate.
        merged:  bool, False until ``merge()`` is called.
        lora_A and lora_B have the base weight's dtype and device, and are the
        only trainable parameters of the layer.

    ``forward(x)``: x has shape (..., in_features); returns (..., out_features)
        in x's dtype:

            self.base(x) + scaling * dropout(x) @ lora_A.T @ lora_B.T

        * Call ``self.base(x)`` for the frozen path, on x as given. Because B
          starts at zero, a fresh adapter must reproduce the base output
          exactly (bit for bit), in training and in eval mode.
        * Dropout (``nn.Dropout(dropout)``) applies to the input of the LoRA
          branch only, never to the base path; in eval mode (``layer.eval()``)
          it is off, as for any nn.Dropout.
        * Multiply x by A first, then by B (in -> r -> out): never build the
          (out, in) matrix B @ A in the forward pass.
        * Once merged, the update already lives in ``base.weight``: forward
          must then return ``self.base(x)`` alone, not add the branch again.

    ``merge()``: add ``scaling * lora_B @ lora_A`` to ``base.weight`` in place
        (under ``torch.no_grad()``), set ``merged = True``. The output must not
        change (up to rounding). Calling ``merge()`` on a merged layer does
        nothing: merging twice adds the update once. Returns None.

    ``unmerge()``: subtract the same update, set ``merged = False``; base.weight
        is restored (up to rounding). On a layer that is not merged it does
        nothing. Returns None.

    Raise ValueError for r < 1 (and TypeError if ``base`` is not an nn.Linear).
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def merge(self) -> None:
        raise NotImplementedError

    def unmerge(self) -> None:
        raise NotImplementedError


def apply_lora(
    model: nn.Module, target_modules: Iterable[str], r: int, alpha: float, dropout: float = 0.0
) -> nn.Module:
    """Wrap the targeted ``nn.Linear`` layers of ``model`` in ``LoRALinear`` and freeze the rest.

    * Matching, as in Hugging Face PEFT: a layer matches when it is an
      ``nn.Linear`` and the *last component* of its qualified name (from
      ``model.named_modules()``) is one of ``target_modules``. With
      ``["q_proj", "v_proj"]``, ``blocks.0.attn.q_proj`` matches and
      ``blocks.0.attn.k_proj`` does not. A single string counts as one name.
    * Each match is replaced in its parent module (``setattr(parent, child_name,
      LoRALinear(layer, r, alpha, dropout))``), so ``blocks.0.attn.q_proj``
      becomes a LoRALinear and its old weight is ``blocks.0.attn.q_proj.base.weight``.
    * Every parameter of the model is frozen (embeddings, norms, biases, the
      untargeted layers, the wrapped bases) except the new lora_A and lora_B.
    * If no layer matches, raise ``ValueError`` with a message that names the
      targets and lists the model's nn.Linear layer names (a typo in a target
      name should be easy to spot). Change nothing in that case.
    * The model is modified in place and returned (the same object).
    """
    raise NotImplementedError


def trainable_parameters(model: nn.Module) -> int:
    """The number of trainable parameters of ``model`` (an int): the total
    ``numel()`` of the parameters with ``requires_grad=True``.

    After ``apply_lora`` that is r * (in_features + out_features) per wrapped layer.
    """
    raise NotImplementedError
