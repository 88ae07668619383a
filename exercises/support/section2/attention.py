"""Support for exercise 2.3 (attention): oracles built on torch's own implementations,
the inputs its tests draw, its named misconceptions and the figure."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    Draw,
    Misconception,
    Misconceptions,
    assert_close,
    batch_shapes,
)


def allowed_keys(lq: int, lk: int, mask: torch.Tensor | None, is_causal: bool) -> torch.Tensor | None:
    """The combined boolean mask (True = may attend), or None when nothing is masked."""
    allowed = None
    if is_causal:
        allowed = torch.ones(lq, lk, dtype=torch.bool).tril()
    if mask is not None:
        allowed = mask if allowed is None else allowed & mask
    return allowed


def attention(q, k, v, mask=None, is_causal=False, scale=None, dead_rows_value=0.0) -> torch.Tensor:
    """torch's SDPA under the kit's conventions: mask and is_causal combine, and a
    query row with no allowed key returns zeros (torch would return NaN).
    ``scale`` and ``dead_rows_value`` are there for the misconceptions."""
    allowed = allowed_keys(q.shape[-2], k.shape[-2], mask, is_causal)
    if allowed is None:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    shape = torch.broadcast_shapes(allowed.shape, (*q.shape[:-1], k.shape[-2]))
    allowed = allowed.expand(shape)
    dead_rows = ~allowed.any(dim=-1, keepdim=True)
    safe = allowed | dead_rows  # give dead rows something to attend to, then zero them
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, scale=scale)
    return out.masked_fill(dead_rows, dead_rows_value)


# --- inputs the public tests and graders draw ----------------------------------

sizes = st.integers(1, 6)


@st.composite
def attention_case(draw_st):
    """Shapes (batch..., Lq, Lk, d, dv), dtype, masking and a value seed."""
    batch = draw_st(batch_shapes())
    lq, lk, d, dv = draw_st(sizes), draw_st(sizes), draw_st(sizes), draw_st(sizes)
    masking = draw_st(st.sampled_from(["none", "mask", "causal", "both"]))
    mask_shape = draw_st(st.sampled_from(["full", "2d", "broadcast"]))
    return batch, lq, lk, d, dv, draw_st(FLOAT_DTYPES), masking, mask_shape, draw_st(SEEDS)


def attention_inputs(case, *, keep_rows_alive=True):
    """``(q, k, v, mask, is_causal)`` for an :func:`attention_case`. With
    ``keep_rows_alive`` key 0 is visible to every query; else some rows may see no key."""
    batch, lq, lk, d, dv, dtype, masking, mask_shape, seed = case
    rng = Draw(seed)
    q = rng.tensor(*batch, lq, d, dtype=dtype, scale=2.0)
    k = rng.tensor(*batch, lk, d, dtype=dtype, scale=2.0)
    v = rng.tensor(*batch, lk, dv, dtype=dtype)
    mask = None
    if masking in ("mask", "both"):
        shape = {"full": (*batch, lq, lk), "2d": (lq, lk), "broadcast": (*(1,) * len(batch), lq, lk)}
        mask = rng.bool_mask(*shape[mask_shape])
        if keep_rows_alive:
            mask[..., 0] = True  # key 0 is visible to every query, causal or not
    return q, k, v, mask, masking in ("causal", "both")


@st.composite
def mha_case(draw_st):
    """One ``MultiHeadAttention`` configuration and call: heads, sizes, bias, dtype, seed."""
    n_heads = draw_st(st.integers(1, 4))
    head_dim = draw_st(st.integers(1, 5))
    return dict(
        n_heads=n_heads,
        d_model=n_heads * head_dim,
        bias=draw_st(st.booleans()),
        b=draw_st(st.integers(1, 3)),
        lq=draw_st(sizes),
        lk=draw_st(sizes),
        cross=draw_st(st.booleans()),
        dtype=draw_st(FLOAT_DTYPES),
        seed=draw_st(SEEDS),
    )


# Always tried first (hypothesis @example): with one head, or one feature per head, every way
# of splitting the heads is the same, and a few drawn cases can all be like that.
MHA_HEADS_MATTER = dict(
    n_heads=2, d_model=6, bias=True, b=2, lq=3, lk=4, cross=True, dtype=torch.float32, seed=3
)


def mha_pair(impl, case):
    """The learner's ``MultiHeadAttention`` and a torch one holding the same weights."""
    reference = torch_mha(case["d_model"], case["n_heads"], case["bias"], case["dtype"], case["seed"])
    learner = impl.MultiHeadAttention(case["d_model"], case["n_heads"], bias=case["bias"]).to(case["dtype"])
    learner.load_state_dict(state_dict_for_learner(reference))
    return learner, reference


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


# --- misconceptions: what each known mistake returns, from torch's own functions ---


def _weights_over_queries(q, k, v, mask=None, is_causal=False):
    """Attention whose softmax runs over the queries (dim=-2): the transpose of attention
    with the roles of q and k swapped, read out with an identity value matrix."""
    allowed = allowed_keys(q.shape[-2], k.shape[-2], mask, is_causal)
    flipped = None if allowed is None else allowed.transpose(-2, -1)
    eye = torch.eye(q.shape[-2], dtype=q.dtype)
    return attention(k, q, eye, flipped).transpose(-2, -1) @ v


def _causal_without_diagonal(q, k, v, mask=None, is_causal=False):
    if is_causal:
        strict = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril(diagonal=-1)
        mask = strict if mask is None else strict & mask
    return attention(q, k, v, mask)


def _mha_with_queries_scaled(factor):
    """``nn.MultiheadAttention`` whose queries are multiplied by ``factor(head_dim, d_model)``
    before attention: its q rows of the packed in-projection scaled."""

    def variant(mha, query, key, value, mask=None, is_causal=False):
        changed = copy.deepcopy(mha)
        d, f = mha.embed_dim, factor(mha.head_dim, mha.embed_dim)
        with torch.no_grad():
            changed.in_proj_weight[:d] *= f
            if changed.in_proj_bias is not None:
                changed.in_proj_bias[:d] *= f
        return mha_forward(changed, query, key, value, mask, is_causal)

    return variant


def _mha_heads_interleaved(mha, query, key, value, mask=None, is_causal=False):
    """Heads split as view(B, L, head_dim, n_heads): head h owns features h, h + H, ...
    That is ``nn.MultiheadAttention`` with its projection features permuted."""
    h, hd = mha.num_heads, mha.head_dim
    order = torch.tensor([j * h + head for head in range(h) for j in range(hd)])
    changed = copy.deepcopy(mha)
    with torch.no_grad():
        rows = torch.cat([order + i * mha.embed_dim for i in range(3)])
        changed.in_proj_weight.copy_(mha.in_proj_weight[rows])
        if mha.in_proj_bias is not None:
            changed.in_proj_bias.copy_(mha.in_proj_bias[rows])
        changed.out_proj.weight.copy_(mha.out_proj.weight[:, order])
    return mha_forward(changed, query, key, value, mask, is_causal)


def _naive_softmax(x, dim=-1):
    exps = torch.exp(x)
    return exps / exps.sum(dim=dim, keepdim=True)


MISCONCEPTIONS = Misconceptions(
    "exercises/section2/README.md",
    Misconception(
        "no_scale",
        "scores not scaled",
        "q @ k^T must be divided by sqrt(d), d = q.shape[-1] (per head: head_dim), before the softmax",
        readme="The 1/√d scale",
        variants={
            "scaled_dot_product_attention": lambda q, k, v, mask=None, is_causal=False: attention(
                q, k, v, mask, is_causal, scale=1.0
            ),
            "MultiHeadAttention": _mha_with_queries_scaled(lambda head_dim, d_model: math.sqrt(head_dim)),
        },
    ),
    Misconception(
        "scale_by_d_model",
        "scaled by sqrt(d_model)",
        "each head's dot products run over head_dim features: scale by 1/sqrt(head_dim)",
        readme="The 1/√d scale",
        variants={
            "MultiHeadAttention": _mha_with_queries_scaled(
                lambda head_dim, d_model: math.sqrt(head_dim / d_model)
            )
        },
    ),
    Misconception(
        "softmax_wrong_axis",
        "softmax over the queries",
        "each query's weights over the keys sum to 1: softmax over the last axis (keys)",
        readme="Masks and the softmax axis",
        variants={"scaled_dot_product_attention": _weights_over_queries},
    ),
    Misconception(
        "causal_off_by_one",
        "the causal mask hides the diagonal",
        "query i may see keys 0..i, itself included (tril(), not tril(-1))",
        readme="Masks and the softmax axis",
        variants={"scaled_dot_product_attention": _causal_without_diagonal},
    ),
    Misconception(
        "mask_inverted",
        "mask read as True = blocked",
        "here True means 'may attend', as in F.scaled_dot_product_attention "
        "(nn.MultiheadAttention's attn_mask is the other way round)",
        readme="Masks and the softmax axis",
        variants={
            "scaled_dot_product_attention": lambda q, k, v, mask=None, is_causal=False: attention(
                q, k, v, None if mask is None else ~mask, is_causal
            )
        },
    ),
    Misconception(
        "nan_for_fully_masked_rows",
        "NaN for a query that sees no key",
        "a slice that is all -inf must give zeros (max is -inf, and -inf - -inf is NaN)",
        readme="Numerical stability",
        variants={
            "softmax": lambda x, dim=-1: torch.softmax(x, dim=dim),
            "scaled_dot_product_attention": lambda q, k, v, mask=None, is_causal=False: attention(
                q, k, v, mask, is_causal, dead_rows_value=float("nan")
            ),
        },
    ),
    Misconception(
        "unstable_softmax",
        "softmax without subtracting the maximum",
        "exp(1000) is inf and inf / inf is NaN: subtract each slice's max before exp()",
        readme="Numerical stability",
        variants={"softmax": _naive_softmax},
    ),
    Misconception(
        "heads_wrong_order",
        "heads split the wrong way",
        "head h owns the contiguous features h*head_dim .. (h+1)*head_dim - 1: "
        "view(B, L, n_heads, head_dim).transpose(1, 2)",
        readme="Multi-head attention",
        variants={"MultiHeadAttention": _mha_heads_interleaved},
    ),
    Misconception(
        "loop_over_queries",
        "a Python loop over queries",
        "batched matrix products do every query of every head at once",
        readme="Speed",
        kind="speed",
    ),
    Misconception(
        "loop_over_rows",
        "a Python loop over query rows",
        "even with the heads batched, each row pays Python's overhead: one product does all rows",
        readme="Speed",
        kind="speed",
    ),
)


def check_one_call(impl, draw) -> None:
    """One small call of the learner's attention, checked against torch's: the generated
    ban test (``test_no_library_shortcuts``, llmkit.plugin.bans) makes it after its static
    scan, with banned calls trapped, so code that does nothing earns nothing there."""
    q, k, v = draw.tensor(2, 4, 8), draw.tensor(2, 4, 8), draw.tensor(2, 4, 8)
    assert_close(impl.scaled_dot_product_attention(q, k, v), attention(q, k, v), name="attention output")


def figure(impl) -> Figure:
    """The attention weights of ``impl``'s scaled_dot_product_attention without a mask,
    causal, and with a padding mask: called with v = I, attention returns its weights."""
    gen = torch.Generator().manual_seed(3)
    q, k = torch.randn(8, 16, generator=gen), torch.randn(8, 16, generator=gen)
    eye = torch.eye(8)
    padding = torch.ones(8, 8, dtype=torch.bool)
    padding[:, 6:] = False  # the last two keys are padding
    panels = [
        ("no mask", impl.scaled_dot_product_attention(q, k, eye)),
        ("causal: query i sees keys 0..i", impl.scaled_dot_product_attention(q, k, eye, is_causal=True)),
        ("padding: keys 6, 7 hidden", impl.scaled_dot_product_attention(q, k, eye, mask=padding)),
    ]
    fig, axes = new_figure(10.0, 3.4, ncols=3)
    for ax, (title, weights) in zip(axes, panels):
        image = ax.imshow(torch.as_tensor(weights).detach().numpy(), vmin=0, vmax=1, cmap="viridis")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("key")
    axes[0].set_ylabel("query")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight (each row sums to 1)")
    return png(fig), "Attention weights without a mask, with a causal mask and with a padding mask"
