"""Support for exercise 0.3 (seq2seq with additive attention): the attention oracle, the
model's weights and inputs the tests draw, the reversal task, its named misconceptions,
the checked call of the ban test and the figure.

* :func:`attention` — additive attention from library calls: the scores are the
  docstring's formula written out, the masked softmax and the weighted average are
  ``F.scaled_dot_product_attention`` with a one-feature query (banned for you, not for
  the tests).
* :func:`state_shapes`, :func:`random_state`, :func:`init_state`, :func:`make_model` —
  the model's parameters by the stub's names, seeded weights for the tests, the
  initialisation training starts from, and a learner's model holding given weights.
* :func:`attention_case` / :func:`attention_inputs` and :func:`model_case` /
  :func:`model_inputs` — the hypothesis strategies both the public tests and the graders
  draw from.
* :data:`FIXED` — one small model with weights from a formula and one padded batch; the
  public tests compare your logits with values pasted from the graders' oracle (the whole
  model written out, which would solve the exercise, lives with the hidden graders).
* :func:`reversal_batch`, :func:`train_reversal`, :func:`reversal_accuracy` — the task
  (reverse a random sequence), plain Adam driven from outside the model (it is only called,
  differentiated with :func:`value_and_grad` and loaded with ``load_state_dict``), and the
  token accuracy of ``greedy_decode`` on fresh sequences.
* :data:`MISCONCEPTIONS` — the known mistakes. Attention variants are closed forms and
  library calls; the model's are the pasted logits of the mistaken wiring on :data:`FIXED`.
* :func:`check_one_call` and :func:`figure` (the alignment matrix of your trained model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    CheckFailure,
    Draw,
    Misconception,
    Misconceptions,
    as_plain_tensor,
    assert_close,
    value_and_grad,
)

PAD, BOS, EOS = 0, 1, 2  # the reversal task's special ids (the model itself takes bos / eos as arguments)


# --- the attention oracle -------------------------------------------------------


def scores64(query, keys, W_q, W_k, v) -> torch.Tensor:
    """e[b, j] = v . tanh(W_q query[b] + W_k keys[b, j]), in float64: (B, S)."""
    f64 = torch.float64
    projected = (query.to(f64) @ W_q.to(f64).T)[:, None, :] + keys.to(f64) @ W_k.to(f64).T
    return torch.tanh(projected) @ v.to(f64)


def _pool(scores, keys, mask):
    """softmax of ``scores`` over the allowed positions, and the average of ``keys`` it
    weighs, by F.scaled_dot_product_attention: a query of one feature equal to 1 and
    keys of one feature equal to the scores make q k^T the scores themselves."""
    b, s = scores.shape
    one = torch.ones(b, 1, 1, dtype=scores.dtype)
    allowed = None if mask is None else mask[:, None, :]
    eye = torch.eye(s, dtype=scores.dtype).expand(b, s, s)
    values = torch.cat([keys.to(scores.dtype), eye], dim=-1)
    pooled = F.scaled_dot_product_attention(one, scores[..., None], values, attn_mask=allowed, scale=1.0)
    pooled = pooled[:, 0]
    return pooled[:, : keys.shape[-1]], pooled[:, keys.shape[-1] :]


def attention(query, keys, mask, W_q, W_k, v) -> tuple[torch.Tensor, torch.Tensor]:
    """(context (B, He), weights (B, S)) of additive attention, computed in float64 and
    cast to ``query``'s dtype; ``mask`` (B, S) bool, True = a real position, or None."""
    context, weights = _pool(scores64(query, keys, W_q, W_k, v), keys, mask)
    return context.to(query.dtype), weights.to(query.dtype)


ATTENTION_HINT = (
    "e = v . tanh(W_q q + W_k k_j); padded scores -inf BEFORE a softmax over the source positions "
    "(dim=-1); context = sum_j weights[:, j] * keys[:, j]"
)


def check_attention(got, want, args, name: str) -> None:
    """The learner's ``(context, weights)`` against ``want``, the weights first; a failure
    names the misconception whose variant matches (``args``: additive_attention's)."""
    for label, actual, expected in (("weights", got[1], want[1]), ("context", got[0], want[0])):
        assert_close(
            actual,
            expected,
            name=f"{label} of {name}",
            hint=ATTENTION_HINT,
            suspects=MISCONCEPTIONS.on(f"additive_attention {label}", *args),
        )


# --- the model's parameters ------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    src_vocab: int
    tgt_vocab: int
    emb_dim: int
    hidden: int

    def args(self) -> tuple[int, int, int, int]:
        return self.src_vocab, self.tgt_vocab, self.emb_dim, self.hidden


def state_shapes(z: Sizes) -> dict[str, tuple[int, ...]]:
    """The state_dict keys of ``Seq2Seq`` and their shapes, as the stub documents them."""
    e, h = z.emb_dim, z.hidden
    return {
        "src_emb.weight": (z.src_vocab, e),
        "tgt_emb.weight": (z.tgt_vocab, e),
        "encoder.weight_ih_l0": (3 * h, e),
        "encoder.weight_hh_l0": (3 * h, h),
        "encoder.bias_ih_l0": (3 * h,),
        "encoder.bias_hh_l0": (3 * h,),
        "decoder.weight_ih": (3 * h, e + h),
        "decoder.weight_hh": (3 * h, h),
        "decoder.bias_ih": (3 * h,),
        "decoder.bias_hh": (3 * h,),
        "W_q": (h, h),
        "W_k": (h, h),
        "v": (h,),
        "out.weight": (z.tgt_vocab, 2 * h),
        "out.bias": (z.tgt_vocab,),
    }


def random_state(z: Sizes, seed: int, dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """Seeded weights for the tests, at scales that keep every part of the model visible
    in its output (gates away from saturation, attention neither flat nor one-hot)."""
    rng = Draw(seed)
    state = {}
    for name, shape in state_shapes(z).items():
        if name.endswith("emb.weight"):
            scale = 1.0
        elif name == "v":
            scale = 2.0
        elif len(shape) == 1:
            scale = 0.5
        else:
            scale = 1.5 / math.sqrt(shape[1])
        state[name] = rng.tensor(*shape, dtype=dtype, scale=scale)
    return state


def init_state(z: Sizes, seed: int, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The weights training starts from, as torch initialises these modules: embeddings
    N(0, 1); the GRUs, W_q, W_k and v uniform in ±1/sqrt(hidden); ``out`` uniform in
    ±1/sqrt(2 hidden)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in state_shapes(z).items():
        if name.endswith("emb.weight"):
            state[name] = torch.randn(shape, generator=gen, dtype=dtype)
        else:
            bound = 1 / math.sqrt(2 * z.hidden if name.startswith("out.") else z.hidden)
            state[name] = (torch.rand(shape, generator=gen, dtype=dtype) * 2 - 1) * bound
    return state


def make_model(impl, z: Sizes, state: dict[str, torch.Tensor], dtype: torch.dtype = torch.float64):
    """The learner's ``Seq2Seq`` in ``dtype`` holding ``state`` (every key, strictly)."""
    model = impl.Seq2Seq(*z.args()).to(dtype)
    model.load_state_dict({name: t.to(dtype) for name, t in state.items()})
    return model


def describe(z: Sizes, dtype=None) -> str:
    extra = "" if dtype is None else f", {str(dtype).removeprefix('torch.')}"
    sizes = f"src_vocab={z.src_vocab}, tgt_vocab={z.tgt_vocab}, emb_dim={z.emb_dim}, hidden={z.hidden}"
    return f"Seq2Seq({sizes}{extra})"


# --- inputs the public tests and graders draw --------------------------------------


@st.composite
def attention_case(draw_st, min_batch: int = 1):
    """Sizes (B, S, Hd, He, A), whether there is a mask, dtype and a value seed."""
    return dict(
        b=draw_st(st.integers(min_batch, 4)),
        s=draw_st(st.integers(1, 6)),
        hd=draw_st(st.integers(1, 5)),
        he=draw_st(st.integers(1, 5)),
        a=draw_st(st.integers(1, 5)),
        masked=draw_st(st.sampled_from([True, True, True, False])),
        dtype=draw_st(FLOAT_DTYPES),
        seed=draw_st(SEEDS),
    )


def attention_inputs(c) -> tuple[torch.Tensor, ...]:
    """``(query, keys, mask, W_q, W_k, v)`` for an :func:`attention_case`. The mask (or
    None) hides random positions, never all of a row's."""
    rng = Draw(c["seed"])
    dtype = c["dtype"]
    query = rng.tensor(c["b"], c["hd"], dtype=dtype)
    keys = rng.tensor(c["b"], c["s"], c["he"], dtype=dtype)
    W_q = rng.tensor(c["a"], c["hd"], dtype=dtype, scale=1.5 / math.sqrt(c["hd"]))
    W_k = rng.tensor(c["a"], c["he"], dtype=dtype, scale=1.5 / math.sqrt(c["he"]))
    v = rng.tensor(c["a"], dtype=dtype, scale=2.0)
    mask = None
    if c["masked"]:
        mask = rng.bool_mask(c["b"], c["s"], p_true=0.6)
        keep = torch.as_tensor(rng.integers(0, c["s"], size=c["b"]))
        mask[torch.arange(c["b"]), keep] = True  # every row keeps a real position
    return query, keys, mask, W_q, W_k, v


def describe_attention(query, keys, mask) -> str:
    m = "None" if mask is None else f"({tuple(mask.shape)}, {int((~mask).sum())} padded)"
    return (
        f"additive_attention(query {tuple(query.shape)}, keys {tuple(keys.shape)}, mask {m}, {query.dtype})"
    )


@st.composite
def model_case(draw_st, min_len: int = 1, dtypes=FLOAT_DTYPES):
    """Model sizes, batch, source width S (>= ``min_len``), target length T, dtype, seed."""
    return dict(
        sizes=Sizes(
            src_vocab=draw_st(st.integers(3, 8)),
            tgt_vocab=draw_st(st.integers(3, 8)),
            emb_dim=draw_st(st.integers(1, 4)),
            hidden=draw_st(st.integers(1, 4)),
        ),
        b=draw_st(st.integers(1, 3)),
        s=draw_st(st.integers(min_len, 5)),
        t=draw_st(st.integers(1, 4)),
        dtype=draw_st(dtypes),
        seed=draw_st(SEEDS),
    )


def model_inputs(c, full_first_row: bool = False):
    """``(src, src_mask, tgt_in)`` for a :func:`model_case`: right-padded sources of random
    lengths 1..S (the first row at full width if asked), random ids everywhere, padding
    included (a correct model never reads them)."""
    rng = Draw(c["seed"] + 1)
    z, b, s = c["sizes"], c["b"], c["s"]
    lengths = torch.as_tensor(rng.integers(1, s + 1, size=b))
    if full_first_row:
        lengths[0] = s
    src = torch.as_tensor(rng.integers(0, z.src_vocab, size=(b, s)), dtype=torch.long)
    mask = torch.arange(s)[None, :] < lengths[:, None]
    tgt_in = torch.as_tensor(rng.integers(0, z.tgt_vocab, size=(b, c["t"])), dtype=torch.long)
    return src, mask, tgt_in


# --- the fixed case the public tests compare with pasted values ------------------------

FIXED_SIZES = Sizes(src_vocab=7, tgt_vocab=6, emb_dim=3, hidden=4)


def fixed_state() -> dict[str, torch.Tensor]:
    """Weights from a formula (no random generator): sin waves, one per tensor."""
    state = {}
    for k, (name, shape) in enumerate(state_shapes(FIXED_SIZES).items()):
        amplitude = 2.0 if name == "v" else 1.0 if name.startswith("W_") else 0.8
        i = torch.arange(math.prod(shape), dtype=torch.float64)
        state[name] = (amplitude * torch.sin(1.7 * i + 0.9 * k + 0.4)).reshape(shape)
    return state


FIXED_SRC = torch.tensor([[3, 5, 2, 6], [4, 6, 0, 0]])
FIXED_MASK = torch.tensor([[True, True, True, True], [True, True, False, False]])
FIXED_TGT_IN = torch.tensor([[5, 3, 4], [5, 1, 2]])
FIXED_MAX_LEN, FIXED_BOS, FIXED_EOS = 5, 5, 1

# Pasted from the graders' oracle (the model written out in float64) on the fixed case:
# forward's logits (2, 3, 6) and attention weights (2, 3, 4), greedy_decode's tokens, and
# the logits of the mistaken wirings (9 significant digits; compared at 1e-7).
_FIXED_LOGITS = [
    1.47960817, 1.30648026, -1.0093328, -1.68545828, -0.0173154571, 0.833821532,
    0.434991318, -0.242808357, -1.55027029, -0.689769409, 1.54261798, 1.43458099,
    0.380503406, 0.150815553, -1.09294453, -0.61536248, 1.16144086, 0.970074356,
    0.761006592, 0.965993418, -0.63918818, -0.966162473, 0.348672992, 0.489081228,
    0.623032022, 0.74538401, -0.726987039, -0.835407119, 0.570287926, 0.585128365,
    0.129029714, -0.0642763137, -1.06159757, -0.368189886, 1.3830523, 0.949700688,
]  # fmt: skip
_FIXED_WEIGHTS = [
    0.243851146, 0.216683977, 0.305517409, 0.233947468,
    0.24407329, 0.231756713, 0.308159852, 0.216010145,
    0.209168666, 0.192264298, 0.25255377, 0.346013266,
    0.275539028, 0.724460972, 0.0, 0.0,
    0.303319683, 0.696680317, 0.0, 0.0,
    0.309235161, 0.690764839, 0.0, 0.0,
]  # fmt: skip
FIXED_TOKENS = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
_FIXED_MISTAKES = {
    "current_state_query": [
        1.1554179, 0.890005998, -1.11136562, -1.37340521, 0.404074958, 0.95302278,
        0.613755694, -0.0326624509, -1.51396967, -0.862764968, 1.32927232, 1.3892369,
        0.488334108, 0.267597593, -1.08125956, -0.720186028, 1.04247863, 0.953151012,
        0.600174791, 0.712911071, -0.737362872, -0.813552891, 0.60302955, 0.596782178,
        0.689753653, 0.754190273, -0.78469627, -0.90327347, 0.558542191, 0.640974038,
        0.0829472836, -0.129622068, -1.08239051, -0.324123789, 1.44894284, 0.973067488,
    ],
    "concat_swapped": [
        2.14443513, 1.71307859, -1.25804379, -2.34658942, -0.445211359, 1.05704059,
        0.659675714, 0.506645979, -1.00795714, -0.884216131, 0.801306492, 0.870363623,
        0.813053747, 1.01200325, -0.644148508, -1.01724874, 0.301351225, 0.491738022,
        1.23895605, 1.32226193, -0.7525296, -1.4384255, -0.0213033359, 0.582707522,
        1.03735786, 1.12722153, -0.750537306, -1.24134617, 0.178396921, 0.590003038,
        0.288592562, 0.46537599, -0.679110023, -0.506401378, 0.859118012, 0.551713641,
    ],
    "state_after_padding": [
        1.47960817, 1.30648026, -1.0093328, -1.68545828, -0.0173154571, 0.833821532,
        0.434991318, -0.242808357, -1.55027029, -0.689769409, 1.54261798, 1.43458099,
        0.380503406, 0.150815553, -1.09294453, -0.61536248, 1.16144086, 0.970074356,
        0.899916388, 0.965104405, -0.779007799, -1.10836597, 0.342960413, 0.625438429,
        0.769301567, 0.819832046, -0.79706587, -0.98157439, 0.490778004, 0.649924548,
        0.229320139, -0.0167965201, -1.1132968, -0.468579079, 1.33201243, 0.997855263,
    ],
}  # fmt: skip
FIXED_TOLERANCE = dict(rtol=1e-7, atol=1e-7)


def fixed_logits() -> torch.Tensor:
    return torch.tensor(_FIXED_LOGITS, dtype=torch.float64).reshape(2, 3, FIXED_SIZES.tgt_vocab)


def fixed_weights() -> torch.Tensor:
    return torch.tensor(_FIXED_WEIGHTS, dtype=torch.float64).reshape(2, 3, 4)


def _pasted_logits(slug: str):
    def variant() -> torch.Tensor:
        return torch.tensor(_FIXED_MISTAKES[slug], dtype=torch.float64).reshape(2, 3, FIXED_SIZES.tgt_vocab)

    return variant


# --- the reversal task ------------------------------------------------------------------


@dataclass(frozen=True)
class Reversal:
    """Reverse a random sequence over an alphabet of ``symbols`` tokens (ids 3 .. 2 + symbols),
    ``min_len`` to ``max_len`` long; the target is the reversed sequence then eos. The model's
    sizes, the batch size, the number of Adam steps and their learning rate go with it."""

    symbols: int = 6
    min_len: int = 2
    max_len: int = 6
    emb_dim: int = 16
    hidden: int = 32
    batch: int = 128
    steps: int = 100
    lr: float = 1e-2

    @property
    def sizes(self) -> Sizes:
        vocab = 3 + self.symbols
        return Sizes(vocab, vocab, self.emb_dim, self.hidden)


REVERSAL = Reversal()


def reversal_batch(gen: torch.Generator, n: int, task: Reversal = REVERSAL):
    """``(src, src_mask, tgt_in, tgt_out, tgt_mask)``: sources right-padded with PAD;
    tgt_out the reversed source then EOS; tgt_in = BOS then tgt_out shifted right;
    tgt_mask True on each row's real target positions (its length + 1)."""
    lengths = torch.randint(task.min_len, task.max_len + 1, (n,), generator=gen)
    s = int(lengths.max())
    positions = torch.arange(s + 1)[None, :]
    src = torch.randint(3, 3 + task.symbols, (n, s), generator=gen)
    src_mask = positions[:, :s] < lengths[:, None]
    src = src.masked_fill(~src_mask, PAD)
    # position t of the target is source position length - 1 - t, and eos at t = length
    index = (lengths[:, None] - 1 - positions).clamp(min=0, max=s - 1)
    tgt_out = src.gather(1, index)
    tgt_out = torch.where(positions == lengths[:, None], EOS, tgt_out)
    tgt_mask = positions <= lengths[:, None]
    tgt_out = tgt_out.masked_fill(~tgt_mask, PAD)
    tgt_in = torch.cat([torch.full((n, 1), BOS), tgt_out[:, :-1]], dim=1)
    return src, src_mask, tgt_in, tgt_out, tgt_mask


def train_reversal(model, seed: int, task: Reversal = REVERSAL, steps: int | None = None) -> list[float]:
    """Adam (betas 0.9 / 0.999, eps 1e-8, lr ``task.lr``) on the mean cross-entropy of the
    real target tokens, ``steps`` batches of fresh sequences drawn from ``seed``; the loss
    before each step.

    The optimiser holds copies of the parameters here: each step calls the model, gets the
    gradients from :func:`value_and_grad` (weights d loss / d logits = (softmax - one-hot)
    / n on real positions) and loads the new values with ``load_state_dict(strict=False)``.
    """
    gen = torch.Generator().manual_seed(seed)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    params: dict[str, torch.Tensor] = {}
    moments: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    losses = []
    with torch.no_grad():
        for step in range(1, (task.steps if steps is None else steps) + 1):
            src, src_mask, tgt_in, tgt_out, tgt_mask = reversal_batch(gen, task.batch, task)
            logits = as_plain_tensor(model(src, src_mask, tgt_in), "logits")
            dtype, logits = logits.dtype, logits.to(torch.float64)
            if logits.shape != (*tgt_in.shape, task.sizes.tgt_vocab):
                raise CheckFailure(
                    f"forward(src {tuple(src.shape)}, src_mask, tgt_in {tuple(tgt_in.shape)}) returned "
                    f"logits of shape {tuple(logits.shape)}, expected {(*tgt_in.shape, task.sizes.tgt_vocab)}"
                )
            n = tgt_mask.sum()
            losses.append(float(F.cross_entropy(logits[tgt_mask], tgt_out[tgt_mask])))
            one_hot = F.one_hot(tgt_out, logits.shape[-1]).to(torch.float64)
            weights = (torch.softmax(logits, dim=-1) - one_hot) * tgt_mask[..., None] / n
            with torch.enable_grad():
                grads = value_and_grad(model, [src, src_mask, tgt_in], weights.to(dtype)).params
            if not params:
                state = model.state_dict()
                params = {name: as_plain_tensor(state[name]).clone() for name in grads}
                moments = {name: (torch.zeros_like(p), torch.zeros_like(p)) for name, p in params.items()}
            for name, p in params.items():
                g = grads[name].to(p.dtype)
                m, v = moments[name]
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                p.sub_(task.lr * (m / (1 - beta1**step)) / ((v / (1 - beta2**step)).sqrt() + eps))
            model.load_state_dict({name: p.clone() for name, p in params.items()}, strict=False)
    return losses


def reversal_accuracy(model, seed: int, n: int = 512, task: Reversal = REVERSAL) -> float:
    """The share of real target tokens (the reversed sequence and its eos) that
    ``greedy_decode`` gets right on ``n`` fresh sequences drawn from ``seed``."""
    src, src_mask, _, tgt_out, tgt_mask = reversal_batch(torch.Generator().manual_seed(seed), n, task)
    max_len = tgt_out.shape[1]
    tokens = as_plain_tensor(model.greedy_decode(src, src_mask, max_len, BOS, EOS), "greedy_decode")
    if tokens.shape != (n, max_len) or tokens.dtype != torch.long:
        raise CheckFailure(
            f"greedy_decode(src {tuple(src.shape)}, src_mask, max_len={max_len}, ...) returned "
            f"{tuple(tokens.shape)} {tokens.dtype}, expected ({n}, {max_len}) torch.int64"
        )
    return float(((tokens == tgt_out) & tgt_mask).sum() / tgt_mask.sum())


# --- misconceptions: what each known mistake returns ----------------------------------


def _attention_with(rule: str):
    """Additive attention under another masking or softmax rule, from the closed-form scores:
    ``{"additive_attention context": ..., "additive_attention weights": ...}``. Rules:
    ``"after_softmax"`` (softmax over every position, then times the mask), ``"ignored"``
    (no mask at all) and ``"batch"`` (padding at -inf, then a softmax over the batch axis)."""

    def compute(query, keys, mask, W_q, W_k, v):
        e = scores64(query, keys, W_q, W_k, v)
        k64 = keys.to(torch.float64)
        if rule == "batch":
            hidden = torch.zeros_like(e, dtype=torch.bool) if mask is None else ~mask
            weights = torch.softmax(e.masked_fill(hidden, float("-inf")), dim=0)
        elif rule == "after_softmax" and mask is not None:
            weights = torch.softmax(e, dim=-1) * mask
        else:
            weights = torch.softmax(e, dim=-1)
        context = torch.einsum("bs,bsh->bh", weights, k64)
        return context.to(query.dtype), weights.to(query.dtype)

    return {
        "additive_attention context": lambda *args: compute(*args)[0],
        "additive_attention weights": lambda *args: compute(*args)[1],
    }


FIXED_FORWARD = "forward on the fixed case"

MISCONCEPTIONS = Misconceptions(
    "exercises/section0/README.md",
    Misconception(
        "mask_after_softmax",
        "padding zeroed after the softmax",
        "multiplying the weights by the mask after the softmax leaves rows that no longer sum to 1: "
        "fill padded scores with -inf before the softmax",
        readme="0.3 — Masking the padding",
        variants=_attention_with("after_softmax"),
    ),
    Misconception(
        "softmax_over_batch",
        "softmax over the batch axis",
        "the scores are (B, S): each row's weights over its source positions sum to 1, so the softmax "
        "runs over dim=-1 (dim=0 was the positions only before the batch axis existed)",
        readme="0.3 — The softmax axis",
        variants=_attention_with("batch"),
    ),
    Misconception(
        "padding_attended",
        "padding attended",
        "positions where src_mask is False are not tokens: their scores must be -inf before the "
        "softmax, so their weights are exactly 0",
        readme="0.3 — Masking the padding",
        variants=_attention_with("ignored"),
    ),
    Misconception(
        "current_state_query",
        "attending with the new decoder state",
        "step t attends with the previous state s_{t-1} (s_0: the encoder's last state), then feeds "
        "[embedding ; context] to the GRU cell: the context is an input of the step, not computed after it",
        readme="0.3 — Which decoder state asks",
        variants={FIXED_FORWARD: _pasted_logits("current_state_query")},
    ),
    Misconception(
        "concat_swapped",
        "[context ; state] fed to the output layer",
        "out takes torch.cat([s_t, c_t], dim=-1): the state's hidden features first, then the context's",
        readme="0.3 — Concatenation order",
        variants={FIXED_FORWARD: _pasted_logits("concat_swapped")},
    ),
    Misconception(
        "state_after_padding",
        "the encoder's final state read after the padding",
        "nn.GRU's h_n on a padded batch has run over the padding too: take each row's state at its "
        "last real token (pack_padded_sequence, or gather the outputs at length - 1)",
        readme="0.3 — The encoder's last state",
        variants={FIXED_FORWARD: _pasted_logits("state_after_padding")},
    ),
    Misconception(
        "decodes_past_eos",
        "greedy decoding goes on after eos",
        "once a row has produced eos it is finished: every later position of that row is eos",
        readme="0.3 — Greedy decoding",
    ),
)


def check_one_call(impl, draw) -> None:
    """One masked call of the learner's additive attention, checked against the oracle: the
    generated ban test makes it after its static scan, with banned calls trapped."""
    query, keys = draw.tensor(3, 4), draw.tensor(3, 5, 6)
    W_q, W_k, v = draw.tensor(7, 4), draw.tensor(7, 6), draw.tensor(7)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    context, weights = impl.additive_attention(query, keys, mask, W_q, W_k, v)
    want_context, want_weights = attention(query, keys, mask, W_q, W_k, v)
    assert_close(weights, want_weights, name="attention weights")
    assert_close(context, want_context, name="context")


# --- the figure -------------------------------------------------------------------------

FIGURE_SOURCE = torch.tensor([[3, 7, 4, 8, 5, 6]])
FIGURE_SEED = 0


def _alignment(model, src):
    """The greedy output for ``src`` and its attention weights (T, S), read back from a
    teacher-forced forward pass on that output."""
    mask = torch.ones_like(src, dtype=torch.bool)
    tokens = as_plain_tensor(model.greedy_decode(src, mask, src.shape[1] + 1, BOS, EOS))
    tgt_in = torch.cat([torch.full((1, 1), BOS), tokens[:, :-1]], dim=1)
    _, weights = model(src, mask, tgt_in, return_attention=True)
    return tokens[0], as_plain_tensor(weights)[0].detach()


def figure(impl) -> Figure:
    """The alignment matrix of ``impl``'s model reversing a sequence, before and after
    ``REVERSAL.steps`` Adam steps on the reversal task (the same training as the grader's):
    trained, the attention of output t falls on source position S - 1 - t."""
    z = REVERSAL.sizes
    model = impl.Seq2Seq(*z.args())
    model.load_state_dict(init_state(z, FIGURE_SEED))
    before = _alignment(model, FIGURE_SOURCE)
    losses = train_reversal(model, FIGURE_SEED)
    after = _alignment(model, FIGURE_SOURCE)
    accuracy = reversal_accuracy(model, FIGURE_SEED + 1, n=256)

    def name(i: int) -> str:
        return {PAD: "pad", BOS: "bos", EOS: "eos"}.get(i, "abcdefghijklmnopqrstuvwxyz"[(i - 3) % 26])

    src_names = [name(int(i)) for i in FIGURE_SOURCE[0]]
    fig, axes = new_figure(12.0, 4.2, ncols=3)
    for ax, (title, (tokens, weights)) in zip(
        axes[:2], [("before training", before), (f"after {REVERSAL.steps} Adam steps", after)]
    ):
        image = ax.imshow(weights.numpy(), vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(src_names)), src_names)
        ax.set_yticks(range(len(tokens)), [name(int(i)) for i in tokens])
        ax.set_xlabel("source token")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("greedy output token")
    fig.colorbar(image, ax=axes[1], shrink=0.8, label="attention weight", pad=0.02)
    axes[2].plot(range(1, len(losses) + 1), losses, color="#1a73e8", lw=1.6)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("Adam step")
    axes[2].set_title(f"training loss; then {accuracy:.1%} of tokens right", fontsize=10)
    axes[2].set_ylabel("cross-entropy", labelpad=2)
    caption = (
        f"Your Seq2Seq reversing '{' '.join(src_names)}': where each output token attends, before and after "
        f"{REVERSAL.steps} Adam steps (an anti-diagonal when it has learned), and the training loss"
    )
    return png(fig), caption
