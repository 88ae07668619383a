"""Exercise 2.3 — scaled dot-product and multi-head attention.

Replace every ``raise NotImplementedError`` with your implementation, then run

    pytest exercises/section2/test_attention.py      (or: llmkit check 2.3)

Banned here (a static scan and a runtime trap enforce it): the library versions
of what you are writing — ``F.scaled_dot_product_attention``,
``F.multi_head_attention_forward``, ``nn.MultiheadAttention`` and every softmax
(``torch.softmax``, ``F.softmax``, ``Tensor.softmax``, ``torch.special.softmax``).
Everything else in torch (matmul, exp, masked_fill, nn.Linear, ...) is fine.
"""

from __future__ import annotations

import math  # noqa: F401  (you will want math.sqrt)

import torch
from torch import nn


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax of ``x`` along ``dim``: exp(x_i) / sum_j exp(x_j).

    * Same shape and dtype as ``x``; ``x`` itself is not modified.
    * Numerically stable: inputs such as 1000.0 or -1000.0 must not give inf or NaN.
    * ``-inf`` entries get probability 0. A slice that is *entirely* ``-inf``
      (nothing to attend to) returns all zeros, not NaN.
    * Gradients flow through it (torch autograd), with no NaN for the all -inf case.
    """
    raise NotImplementedError


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    is_causal: bool = False,
) -> torch.Tensor:
    """softmax(q @ k^T / sqrt(d) + masking) @ v.

    Shapes (any number of leading batch dims ``...``, the same for q, k and v):
        q:    (..., Lq, d)
        k:    (..., Lk, d)
        v:    (..., Lk, dv)
        mask: bool, broadcastable to (..., Lq, Lk); True means "this query may
              attend to this key" (torch's convention), False means blocked.
        returns (..., Lq, dv), same dtype as q.

    is_causal=True lets query i attend only to keys 0..i (the top-left aligned
    lower triangle of an (Lq, Lk) matrix, as torch does). When both ``mask`` and
    ``is_causal`` are given, a key must be allowed by both.

    A query row with no allowed key at all returns zeros (its softmax row is all
    zeros, see ``softmax``), and its gradient is zero, not NaN.
    """
    raise NotImplementedError


class MultiHeadAttention(nn.Module):
    """Multi-head attention, equivalent to ``nn.MultiheadAttention(d_model, n_heads,
    bias=bias, batch_first=True)`` when weights are copied across.

    Attributes (names matter: the tests load weights into them):
        q_proj, k_proj, v_proj, out_proj: ``nn.Linear(d_model, d_model, bias=bias)``

    ``forward(query, key=None, value=None, mask=None, is_causal=False)``:
        query: (B, Lq, d_model); key, value: (B, Lk, d_model).
        key defaults to query and value to key (self-attention).
        mask: bool, broadcastable to (B, n_heads, Lq, Lk), True = may attend.
        returns (B, Lq, d_model).

    Heads: after projecting, view (B, L, d_model) as (B, L, n_heads, head_dim)
    with head_dim = d_model // n_heads (head h owns features h*head_dim ...
    (h+1)*head_dim - 1), attend per head with scale 1/sqrt(head_dim), merge the
    heads back and apply out_proj. Use your ``scaled_dot_product_attention``.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True):
        super().__init__()
        raise NotImplementedError

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        raise NotImplementedError
