"""Support for exercise 2.3 (attention): oracles built on torch's own implementations,
and the figure."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import assert_close


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
    return state_dict_for_learner_from({name: p.detach().clone() for name, p in mha.named_parameters()})


def state_dict_for_learner_from(torch_named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename ``nn.MultiheadAttention`` tensors (weights or their gradients) to the
    exercise's names, splitting the packed in_proj into q, k and v."""
    state = {"out_proj.weight": torch_named["out_proj.weight"]}
    for kind in ("weight", "bias"):
        packed = torch_named.get(f"in_proj_{kind}")
        if packed is not None:
            for proj, part in zip(("q_proj", "k_proj", "v_proj"), packed.chunk(3)):
                state[f"{proj}.{kind}"] = part
    if "out_proj.bias" in torch_named:
        state["out_proj.bias"] = torch_named["out_proj.bias"]
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


class KitConventionMHA(nn.Module):
    """``nn.MultiheadAttention`` behind the exercise's forward signature and mask
    convention, so it can go wherever the learner's module goes (e.g. value_and_grad)."""

    def __init__(self, mha: nn.MultiheadAttention):
        super().__init__()
        self.mha = mha

    def forward(self, query, key=None, value=None, mask=None, is_causal=False):
        key = query if key is None else key
        value = key if value is None else value
        return mha_forward(self.mha, query, key, value, mask, is_causal)

    def learner_named(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-parameter tensors of this module (e.g. gradients) under the learner's names."""
        return state_dict_for_learner_from({name.removeprefix("mha."): t for name, t in tensors.items()})


def check_one_call(impl, draw) -> None:
    """One small call of the learner's attention, checked against torch's: the generated
    ban test (``test_no_library_shortcuts``, llmkit.plugin.bans) makes it after its static
    scan, with banned calls trapped, so code that does nothing earns nothing there."""
    q, k, v = draw.tensor(2, 4, 8), draw.tensor(2, 4, 8), draw.tensor(2, 4, 8)
    assert_close(impl.scaled_dot_product_attention(q, k, v), attention(q, k, v), name="attention output")


def figure() -> Figure:
    """Attention weights without a mask, with a causal and with a padding mask."""
    torch.manual_seed(3)
    q, k = torch.randn(8, 16), torch.randn(8, 16)
    scores = q @ k.T / math.sqrt(16)
    causal = torch.ones(8, 8, dtype=torch.bool).tril()
    padding = torch.ones(8, 8, dtype=torch.bool)
    padding[:, 6:] = False  # the last two keys are padding
    panels = [
        ("no mask", scores),
        ("causal: query i sees keys 0..i", scores.masked_fill(~causal, float("-inf"))),
        ("padding: keys 6, 7 hidden", scores.masked_fill(~padding, float("-inf"))),
    ]
    fig, axes = new_figure(10.0, 3.4, ncols=3)
    for ax, (title, s) in zip(axes, panels):
        image = ax.imshow(torch.softmax(s, dim=-1).numpy(), vmin=0, vmax=1, cmap="viridis")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("key")
    axes[0].set_ylabel("query")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight (each row sums to 1)")
    return png(fig), "Attention weights without a mask, with a causal mask and with a padding mask"
