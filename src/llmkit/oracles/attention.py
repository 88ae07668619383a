"""Oracles for exercise 2.3 (attention), built on torch's own implementations."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def allowed_keys(lq: int, lk: int, mask: torch.Tensor | None, is_causal: bool) -> torch.Tensor | None:
    """The combined boolean mask (True = may attend), or None when nothing is masked."""
    allowed = None
    if is_causal:
        allowed = torch.ones(lq, lk, dtype=torch.bool).tril()
    if mask is not None:
        allowed = mask if allowed is None else allowed & mask
    return allowed


def attention(q, k, v, mask=None, is_causal=False) -> torch.Tensor:
    """torch's SDPA under the kit's conventions: mask and is_causal combine, and a
    query row with no allowed key returns zeros (torch would return NaN)."""
    allowed = allowed_keys(q.shape[-2], k.shape[-2], mask, is_causal)
    if allowed is None:
        return F.scaled_dot_product_attention(q, k, v)
    shape = torch.broadcast_shapes(allowed.shape, (*q.shape[:-1], k.shape[-2]))
    allowed = allowed.expand(shape)
    dead_rows = ~allowed.any(dim=-1, keepdim=True)
    safe = allowed | dead_rows  # give dead rows something to attend to, then zero them
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe)
    return out.masked_fill(dead_rows, 0.0)


def torch_mha(d_model: int, n_heads: int, bias: bool, dtype: torch.dtype, seed: int) -> nn.MultiheadAttention:
    """A randomly initialised ``nn.MultiheadAttention`` (batch_first) with non-zero biases."""
    gen = torch.Generator().manual_seed(seed)
    mha = nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True).to(dtype)
    with torch.no_grad():
        for p in mha.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) / d_model**0.5)
    return mha.eval()


def state_dict_for_learner(mha: nn.MultiheadAttention) -> dict[str, torch.Tensor]:
    """``mha``'s weights under the exercise's names: q_proj, k_proj, v_proj, out_proj."""
    q_w, k_w, v_w = mha.in_proj_weight.detach().clone().chunk(3)
    state = {
        "q_proj.weight": q_w,
        "k_proj.weight": k_w,
        "v_proj.weight": v_w,
        "out_proj.weight": mha.out_proj.weight.detach().clone(),
    }
    if mha.in_proj_bias is not None:
        q_b, k_b, v_b = mha.in_proj_bias.detach().clone().chunk(3)
        state.update(
            {
                "q_proj.bias": q_b,
                "k_proj.bias": k_b,
                "v_proj.bias": v_b,
                "out_proj.bias": mha.out_proj.bias.detach().clone(),
            }
        )
    return state


def mha_forward(mha: nn.MultiheadAttention, query, key, value, mask=None, is_causal=False):
    """``mha`` called with the kit's mask convention (True = may attend).

    ``mask`` may be (Lq, Lk) or (B, n_heads, Lq, Lk)-broadcastable; torch wants
    True = blocked and a (Lq, Lk) or (B * n_heads, Lq, Lk) shape.
    """
    b, lq, lk, h = query.shape[0], query.shape[1], key.shape[1], mha.num_heads
    allowed = allowed_keys(lq, lk, mask, is_causal)
    if allowed is None:
        return mha(query, key, value, need_weights=False)[0]
    allowed = allowed.expand(b, h, lq, lk)
    dead_rows = ~allowed.any(dim=-1, keepdim=True)
    blocked = ~(allowed | dead_rows)
    out = mha(query, key, value, attn_mask=blocked.reshape(b * h, lq, lk), need_weights=False)[0]
    if dead_rows.any():
        raise ValueError("mha_forward oracle: fully masked rows are not supported")
    return out
