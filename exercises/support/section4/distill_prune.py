"""Support for exercise 4.3 (distillation and pruning): oracles built on torch's own
functions, the inputs its tests draw, its named misconceptions and the figure.

* :func:`distillation_oracle` — ``F.kl_div(..., log_target=True, reduction="batchmean")``
  times T², plus ``F.cross_entropy``, on the logits flattened to (N, V).
* :func:`magnitude_mask`, :func:`global_masks`, :func:`structured_mask` —
  ``torch.nn.utils.prune`` (``l1_unstructured``, ``global_unstructured``,
  ``ln_structured``) on a stand-in module, as bool masks. torch leaves the order of
  equal magnitudes to ``torch.topk``; the exercise prunes the lower index first, so the
  oracles hand torch importance scores that break ties that way (:func:`index_tie_break`)
  and leave every other comparison as it was.
* :func:`distill_case`, :func:`prune_case`, :func:`global_case`, :func:`structured_case`
  and :func:`grid_weights` — the inputs public tests and graders both draw.
* :data:`MISCONCEPTIONS`, :func:`check_one_call` and :func:`figure`.

Variants compute what each mistake returns from the same library calls with another
rule (a mean over the vocabulary, the KL's arguments swapped, a truncated count, a
threshold), never from a solution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    CheckFailure,
    Draw,
    Misconception,
    Misconceptions,
    assert_close,
    batch_shapes,
    describe_case,
)

# --- distillation -------------------------------------------------------------------


def _flat(student, teacher, labels):
    """(N, V) student and (detached) teacher logits and (N,) labels."""
    vocab = student.shape[-1]
    return student.reshape(-1, vocab), teacher.detach().reshape(-1, vocab), labels.reshape(-1)


def kl_teacher_student(student, teacher, T: float) -> torch.Tensor:
    """KL(p_teacher || p_student) at temperature T, summed over the vocabulary and averaged
    over positions: F.kl_div takes the student's log-probabilities first, the target second."""
    vocab = student.shape[-1]
    log_s = F.log_softmax(student.reshape(-1, vocab) / T, dim=-1)
    log_t = F.log_softmax(teacher.detach().reshape(-1, vocab) / T, dim=-1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean")


def distillation_oracle(student, teacher, labels, T: float = 2.0, alpha: float = 0.5) -> torch.Tensor:
    """alpha * T^2 * KL(p_teacher || p_student) + (1 - alpha) * cross-entropy at T = 1."""
    s, _, y = _flat(student, teacher, labels)
    return alpha * T**2 * kl_teacher_student(student, teacher, T) + (1 - alpha) * F.cross_entropy(s, y)


# --- pruning ------------------------------------------------------------------------


def _holder(W: torch.Tensor) -> nn.Module:
    """A stand-in module whose parameter ``weight`` is a copy of ``W``, for torch's pruning."""
    module = nn.Module()
    module.weight = nn.Parameter(W.detach().clone(), requires_grad=False)
    return module


def index_tie_break(scores: torch.Tensor) -> torch.Tensor:
    """``scores`` in float64 plus index * delta: equal scores become distinct, the lower
    index smaller, and delta is small enough that no two different scores swap."""
    flat = scores.detach().to(torch.float64).flatten()
    distinct = torch.unique(flat)
    gap = float((distinct[1:] - distinct[:-1]).min()) if distinct.numel() > 1 else 1.0
    delta = gap / (2 * (flat.numel() + 1))
    return (flat + delta * torch.arange(flat.numel(), dtype=torch.float64)).reshape(scores.shape)


def _count(amount, n: int) -> int:
    """How many units torch prunes: an int amount itself, a float one round(amount * n)."""
    return amount if isinstance(amount, int) else round(amount * n)


def magnitude_mask(W: torch.Tensor, amount) -> torch.Tensor:
    """``prune.l1_unstructured``'s mask of ``W`` as bool (True = kept), ties pruned in
    flat-index order."""
    holder = _holder(W)
    scores = index_tie_break(W.detach().abs())
    prune.l1_unstructured(holder, "weight", amount=amount, importance_scores=scores)
    return holder.weight_mask.bool()


def global_masks(params: dict[str, torch.Tensor], amount) -> dict[str, torch.Tensor]:
    """``prune.global_unstructured`` (L1Unstructured) over ``params`` as bool masks, ties
    pruned in the order of the concatenation (the dict's order, then the flat index)."""
    if not params:
        return {}
    holders = {name: _holder(W) for name, W in params.items()}
    scores = index_tie_break(
        torch.cat([W.detach().abs().to(torch.float64).flatten() for W in params.values()])
    )
    importance, start = {}, 0
    for name, W in params.items():
        importance[(holders[name], "weight")] = scores[start : start + W.numel()].reshape(W.shape)
        start += W.numel()
    prune.global_unstructured(
        [(holders[name], "weight") for name in params],
        pruning_method=prune.L1Unstructured,
        amount=amount,
        importance_scores=importance,
    )
    return {name: holder.weight_mask.bool() for name, holder in holders.items()}


def slice_norms(W: torch.Tensor, dim: int, p: float = 2) -> torch.Tensor:
    """The L_p norm of each slice of ``W`` along ``dim`` (over all the other dims), in W's dtype."""
    axis = range(W.dim())[dim]
    return torch.linalg.vector_norm(W.detach(), ord=p, dim=[d for d in range(W.dim()) if d != axis])


def structured_mask(W: torch.Tensor, amount, dim: int = 0, p: float = 2) -> torch.Tensor:
    """``prune.ln_structured(n=p, dim=dim)``'s mask of ``W`` as bool, ties between equal
    norms pruned in index order. torch ranks the norms of its importance scores: here a
    tensor whose slice i holds one non-zero, the (tie-broken) norm of W's slice i."""
    axis = range(W.dim())[dim]
    norms = index_tie_break(slice_norms(W, axis, p))
    scores = torch.zeros(W.shape, dtype=torch.float64)
    scores[tuple(slice(None) if d == axis else 0 for d in range(W.dim()))] = norms
    holder = _holder(W)
    prune.ln_structured(holder, "weight", amount=amount, n=2, dim=axis, importance_scores=scores)
    return holder.weight_mask.bool()


def sparsity(mask: torch.Tensor) -> float:
    """The share of pruned (False) entries."""
    return 1.0 - float(mask.float().mean()) if mask.numel() else 0.0


# --- inputs the public tests and graders draw -------------------------------------

# Temperatures whose squares are not integers and alphas away from 0, 1/2 and 1: every
# mistake moves the loss, and no two mistakes coincide (1/V for a mean over the
# vocabulary never equals 1/T^2).
PUBLIC_TEMPERATURES = st.sampled_from([0.5, 1.5, 2.5, 3.5])
PUBLIC_ALPHAS = st.sampled_from([0.1, 0.3, 0.7, 0.9])
HALF_AND_FULL = st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64])


@st.composite
def distill_case(draw_st, temperatures=PUBLIC_TEMPERATURES, alphas=PUBLIC_ALPHAS):
    """Leading dims (none to 2), vocabulary V, dtype, T, alpha (drawn from the strategies
    given), the logits' scale and a seed."""
    return dict(
        batch=draw_st(batch_shapes(max_dims=2, max_size=4)),
        vocab=draw_st(st.integers(2, 9)),
        dtype=draw_st(FLOAT_DTYPES),
        T=draw_st(temperatures),
        alpha=draw_st(alphas),
        scale=draw_st(st.sampled_from([1.0, 3.0])),
        seed=draw_st(SEEDS),
    )


def distill_inputs(case) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(student_logits, teacher_logits, labels) for a :func:`distill_case`."""
    rng = Draw(case["seed"])
    shape = (*case["batch"], case["vocab"])
    student = rng.tensor(*shape, dtype=case["dtype"], scale=case["scale"])
    teacher = rng.tensor(*shape, dtype=case["dtype"], scale=case["scale"])
    labels = torch.as_tensor(rng.integers(0, case["vocab"], size=case["batch"]), dtype=torch.int64)
    return student, teacher, labels


def describe_distill(case) -> str:
    shape = (*case["batch"], case["vocab"])
    return describe_case(
        "distillation_loss", f"logits {shape} {case['dtype']}", T=case["T"], alpha=case["alpha"]
    ).replace("torch.", "")


@st.composite
def amounts(draw_st, n: int):
    """A float fraction in [0, 1] or an int count in 0..n, as torch.nn.utils.prune takes them."""
    return draw_st(st.one_of(st.floats(0.0, 1.0), st.integers(0, n)))


@st.composite
def prune_case(draw_st, max_dims: int = 3, max_size: int = 6, dtypes=HALF_AND_FULL):
    """(shape, dtype, amount, seed) for magnitude_prune."""
    shape = tuple(draw_st(st.lists(st.integers(1, max_size), min_size=1, max_size=max_dims)))
    return shape, draw_st(dtypes), draw_st(amounts(math.prod(shape))), draw_st(SEEDS)


@st.composite
def global_case(draw_st, max_tensors: int = 3, max_size: int = 5, dtypes=HALF_AND_FULL):
    """(shapes, scales, dtype, amount, seed): tensors of different sizes and scales, so a
    global ranking prunes the small-scale tensors harder than a per-tensor one would."""
    count = draw_st(st.integers(1, max_tensors))
    shapes = [
        tuple(draw_st(st.lists(st.integers(1, max_size), min_size=1, max_size=2))) for _ in range(count)
    ]
    scales = [draw_st(st.sampled_from([0.1, 1.0, 10.0])) for _ in range(count)]
    total = sum(math.prod(s) for s in shapes)
    return shapes, scales, draw_st(dtypes), draw_st(amounts(total)), draw_st(SEEDS)


def global_inputs(shapes, scales, dtype, seed) -> dict[str, torch.Tensor]:
    rng = Draw(seed)
    return {
        f"layer{i}.weight": rng.tensor(*s, dtype=dtype, scale=c)
        for i, (s, c) in enumerate(zip(shapes, scales))
    }


@st.composite
def structured_case(draw_st, min_dims: int = 2, max_dims: int = 3, max_size: int = 6, dtypes=FLOAT_DTYPES):
    """(shape, dim, dtype, amount, seed) for structured_prune; dim may be negative."""
    shape = tuple(draw_st(st.lists(st.integers(1, max_size), min_size=min_dims, max_size=max_dims)))
    dim = draw_st(st.integers(-len(shape), len(shape) - 1))
    return shape, dim, draw_st(dtypes), draw_st(amounts(shape[dim])), draw_st(SEEDS)


def grid_weights(shape, seed: int, dtype=torch.float32, levels: int = 3) -> torch.Tensor:
    """Weights on the grid {-levels, ..., levels} / 2: many exact ties, exact norms."""
    values = Draw(seed).integers(-levels, levels + 1, size=shape)
    return torch.as_tensor(values, dtype=torch.float64).to(dtype) / 2


# --- misconceptions: what each mistake returns, from the same library calls ---------


def _no_t_squared(student, teacher, labels, T=2.0, alpha=0.5):
    s, _, y = _flat(student, teacher, labels)
    return alpha * kl_teacher_student(student, teacher, T) + (1 - alpha) * F.cross_entropy(s, y)


def _kl_mean_over_vocab(student, teacher, labels, T=2.0, alpha=0.5):
    s, _, y = _flat(student, teacher, labels)
    kl = kl_teacher_student(student, teacher, T) / student.shape[-1]  # reduction="mean": / (N * V)
    return alpha * T**2 * kl + (1 - alpha) * F.cross_entropy(s, y)


def _kl_reversed(student, teacher, labels, T=2.0, alpha=0.5):
    s, t, y = _flat(student, teacher, labels)
    log_s, log_t = F.log_softmax(s / T, dim=-1), F.log_softmax(t / T, dim=-1)
    kl = F.kl_div(log_t, log_s, log_target=True, reduction="batchmean")  # KL(p_student || p_teacher)
    return alpha * T**2 * kl + (1 - alpha) * F.cross_entropy(s, y)


def _ce_at_temperature(student, teacher, labels, T=2.0, alpha=0.5):
    s, _, y = _flat(student, teacher, labels)
    return alpha * T**2 * kl_teacher_student(student, teacher, T) + (1 - alpha) * F.cross_entropy(s / T, y)


def _alpha_on_ce(student, teacher, labels, T=2.0, alpha=0.5):
    return distillation_oracle(student, teacher, labels, T, 1 - alpha)


def _log_of_softmax(student, teacher, labels, T=2.0, alpha=0.5):
    s, t, y = _flat(student, teacher, labels)
    p_s, p_t = torch.softmax(s / T, dim=-1), torch.softmax(t / T, dim=-1)
    kl = (p_t * (p_t.log() - p_s.log())).sum(dim=-1).mean()  # log(0) = -inf, 0 * -inf = NaN
    return alpha * T**2 * kl + (1 - alpha) * F.cross_entropy(s, y)


def _truncated(amount, n: int):
    """The amount a truncated count would amount to: int(amount * n) units."""
    return amount if isinstance(amount, int) else int(amount * n)


def _threshold_keep(scores: torch.Tensor, amount) -> torch.Tensor:
    """Keep what is strictly above the k-th smallest score: every tie at the threshold goes."""
    flat = scores.detach().to(torch.float64).flatten()
    k = _count(amount, flat.numel())
    if k == 0:
        return torch.ones(scores.shape, dtype=torch.bool)
    return (flat > torch.kthvalue(flat, k).values).reshape(scores.shape)


def _threshold_global(params, amount):
    if not params:
        return {}
    keep = _threshold_keep(
        torch.cat([W.detach().abs().to(torch.float64).flatten() for W in params.values()]), amount
    )
    out, start = {}, 0
    for name, W in params.items():
        out[name] = keep[start : start + W.numel()].reshape(W.shape)
        start += W.numel()
    return out


def _threshold_structured(W, amount, dim=0):
    axis = range(W.dim())[dim]
    keep = _threshold_keep(slice_norms(W, axis), amount)
    shape = [1] * W.dim()
    shape[axis] = W.shape[axis]
    return keep.reshape(shape).expand(W.shape)


def _norm_along_dim(W, amount, dim=0):
    """2-D only: the norm taken along ``dim`` ranks the slices of the other axis."""
    if W.dim() != 2:
        raise ValueError("variant defined for 2-D weights")
    return structured_mask(W, amount, 1 - range(2)[dim])


MISCONCEPTIONS = Misconceptions(
    "exercises/section4/README.md",
    Misconception(
        "kl_mean_reduction",
        "the KL averaged over the vocabulary too",
        "sum the KL over the V classes of each position, then average over positions "
        '(F.kl_div\'s reduction="batchmean"); a mean over all N * V numbers ("mean") divides by V',
        readme="4.3 — The KL term: direction and reduction",
        variants={"distillation_loss": _kl_mean_over_vocab},
    ),
    Misconception(
        "no_temperature_squared",
        "the soft term not multiplied by T²",
        "softening by T shrinks the soft term's gradients by 1/T²: multiply the KL by T**2 "
        "so that it keeps its weight against the cross-entropy",
        readme="4.3 — Temperature, T² and alpha",
        variants={"distillation_loss": _no_t_squared},
    ),
    Misconception(
        "kl_reversed",
        "KL(p_student || p_teacher)",
        "distillation uses KL(p_teacher || p_student) = sum p_teacher * (log p_teacher - log p_student); "
        "the KL is not symmetric",
        readme="4.3 — The KL term: direction and reduction",
        variants={"distillation_loss": _kl_reversed},
    ),
    Misconception(
        "teacher_not_detached",
        "gradients flow into the teacher",
        "the teacher is a fixed target: use teacher_logits.detach(), so backward() leaves "
        "teacher_logits.grad alone",
        readme="4.3 — The teacher is a constant",
    ),
    Misconception(
        "ce_at_temperature",
        "the hard-label cross-entropy computed at temperature T",
        "only the soft term is softened: the cross-entropy with the labels uses the raw "
        "student logits (T = 1)",
        readme="4.3 — Temperature, T² and alpha",
        variants={"distillation_loss": _ce_at_temperature},
    ),
    Misconception(
        "alpha_on_wrong_term",
        "alpha weights the cross-entropy",
        "here alpha weights the soft (KL) term and 1 - alpha the hard cross-entropy",
        readme="4.3 — Temperature, T² and alpha",
        variants={"distillation_loss": _alpha_on_ce},
    ),
    Misconception(
        "log_of_softmax",
        "log taken of the softmax probabilities",
        "a confident teacher's small probabilities round to 0, log(0) = -inf and 0 * -inf = NaN: "
        "get log-probabilities from log_softmax and exp() them for p_teacher",
        readme="4.3 — Log-probabilities, not the log of probabilities",
        variants={"distillation_loss": _log_of_softmax},
    ),
    Misconception(
        "count_truncated",
        "the count truncated with int()",
        "prune round(amount * n) units, Python's round (halves to even), as torch.nn.utils.prune "
        "does; int() drops 28.9999 to 28",
        readme="4.3 — How many: round(amount · n)",
        variants={
            "magnitude_prune": lambda W, amount: magnitude_mask(W, _truncated(amount, W.numel())),
            "global_magnitude_prune": lambda params, amount: global_masks(
                params, _truncated(amount, sum(W.numel() for W in params.values()))
            ),
            "structured_prune": lambda W, amount, dim=0: structured_mask(
                W, _truncated(amount, W.shape[dim]), dim
            ),
        },
    ),
    Misconception(
        "threshold_prunes_ties",
        "everything at the threshold pruned",
        "prune exactly k units: with ties at the k-th smallest magnitude, |W| > kthvalue prunes them "
        "all; sort stably and prune the first k (the lower index first among equals)",
        readme="4.3 — Ties at the threshold",
        variants={
            "magnitude_prune": lambda W, amount: _threshold_keep(W.abs(), amount),
            "global_magnitude_prune": _threshold_global,
            "structured_prune": _threshold_structured,
        },
    ),
    Misconception(
        "global_per_tensor",
        "each tensor pruned on its own",
        "global pruning ranks all the weights together (one threshold for the whole model): "
        "a tensor of small weights loses more than `amount` of them, one of large weights less",
        readme="4.3 — Global pruning is one ranking",
        variants={
            "global_magnitude_prune": lambda params, amount: {
                name: magnitude_mask(W, amount) for name, W in params.items()
            }
        },
    ),
    Misconception(
        "structured_norm_along_dim",
        "the norm taken along dim",
        "dim names the axis whose slices are pruned (dim=0: rows of a Linear weight, output units): "
        "each slice's norm runs over all the OTHER dims",
        readme="4.3 — Structured pruning: which axis, which norm",
        variants={"structured_prune": _norm_along_dim},
    ),
    Misconception(
        "structured_l1_norm",
        "slices ranked by their L1 norm",
        "rank the slices by their L2 norm sqrt(sum w^2) (ln_structured with n=2); the sum of |w| ranks "
        "a slice of many small weights above one with a single large weight",
        readme="4.3 — Structured pruning: which axis, which norm",
        variants={"structured_prune": lambda W, amount, dim=0: structured_mask(W, amount, dim, p=1)},
    ),
)


class _EntryOf:
    """The suspects of one entry of a function that returns a dict (a mask per name)."""

    def __init__(self, suspects, key: str):
        self.suspects, self.key = suspects, key

    def first_match(self, accepts):
        return self.suspects.first_match(
            lambda value: isinstance(value, dict) and self.key in value and accepts(value[self.key])
        )


def check_global_masks(got, params: dict[str, torch.Tensor], amount, *, name: str, hint: str | None = None):
    """``got`` (the learner's global_magnitude_prune(params, amount)) holds torch's mask
    for every name, in order; a failing mask names the likely mistake."""
    want = global_masks(params, amount)
    if not isinstance(got, dict) or list(got) != list(want):
        keys = list(got) if isinstance(got, dict) else type(got).__name__
        raise CheckFailure(
            f"{name}: expected a dict with the keys {list(want)}, got {keys}",
            hint="return {name: mask} for every name of params, in the same order",
        )
    suspects = MISCONCEPTIONS.on("global_magnitude_prune", params, amount)
    for key, mask in want.items():
        assert_close(
            got[key], mask, name=f"{name}, mask {key!r}", hint=hint, suspects=_EntryOf(suspects, key)
        )


def check_one_call(impl, draw) -> None:
    """One small call of each function, checked against torch's: the generated ban test
    (``test_no_library_shortcuts``) makes it after its static scan, with F.kl_div and
    torch.nn.utils.prune trapped, so code that does nothing earns nothing there."""
    student, teacher = draw.tensor(3, 5, dtype=torch.float64), draw.tensor(3, 5, dtype=torch.float64)
    labels = torch.tensor([0, 4, 2])
    assert_close(
        impl.distillation_loss(student, teacher, labels, T=2.5, alpha=0.3),
        distillation_oracle(student, teacher, labels, 2.5, 0.3),
        name="distillation_loss",
    )
    W = draw.tensor(6, 4)
    assert_close(impl.magnitude_prune(W, 0.4), magnitude_mask(W, 0.4), name="magnitude_prune mask")
    assert_close(
        impl.structured_prune(W, 0.5, dim=0), structured_mask(W, 0.5, 0), name="structured_prune mask"
    )
    params = {"a": W, "b": draw.tensor(3, 3, scale=0.1)}
    check_global_masks(impl.global_magnitude_prune(params, 0.5), params, 0.5, name="global_magnitude_prune")


# --- figure ---------------------------------------------------------------------------


def _mlp_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random 3-layer MLP with heavy-tailed weights (a few large, many small, as in trained
    networks) and layers of different scales."""
    gen = torch.Generator().manual_seed(seed)
    sizes, scales = [(48, 32), (48, 48), (10, 48)], [1.0, 0.5, 2.0]
    weights = {}
    for i, ((out, inp), s) in enumerate(zip(sizes, scales)):
        normal = torch.randn(out, inp, generator=gen, dtype=torch.float64)
        spread = torch.randn(out, inp, generator=gen, dtype=torch.float64).exp()
        weights[f"layer{i}"] = normal * spread * s / math.sqrt(inp)
    return weights


def _mlp(weights: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    *hidden, last = weights.values()
    for W in hidden:
        x = torch.relu(x @ W.T)
    return x @ last.T


def figure(impl) -> Figure:
    """The learner's masks on one weight matrix (unstructured, structured), the output error
    of a random MLP pruned by each of the learner's functions against the share of weights
    removed, and the learner's soft-loss gradient against the temperature."""
    gen = torch.Generator().manual_seed(4)
    W = torch.randn(16, 16, generator=gen)
    panels = [
        ("magnitude_prune(W, 0.5)", impl.magnitude_prune(W, 0.5)),
        ("structured_prune(W, 0.5, dim=0)", impl.structured_prune(W, 0.5, dim=0)),
    ]
    fig, axes = new_figure(17.0, 3.9, ncols=4)
    limit = float(W.abs().max())
    for ax, (title, mask) in zip(axes, panels):
        shown = W.masked_fill(~torch.as_tensor(mask).bool(), float("nan"))
        image = ax.imshow(shown.numpy(), cmap="coolwarm", vmin=-limit, vmax=limit)
        ax.set_title(f"{title}\nwhite = pruned", fontsize=9)
        ax.set_xlabel("input")
    axes[0].set_ylabel("output (row)")
    fig.colorbar(image, ax=axes[:2], shrink=0.8, label="kept weight")

    # The output error of an MLP pruned by each of the learner's functions.
    weights, x = _mlp_weights(), torch.randn(256, 32, generator=gen, dtype=torch.float64)
    clean = _mlp(weights, x)
    fractions = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    curves = {
        "per layer (magnitude_prune)": [],
        "global (global_magnitude_prune)": [],
        "rows (structured_prune)": [],
    }
    baseline = []
    for amount in fractions:
        pruned = {
            "per layer (magnitude_prune)": {
                n: W * impl.magnitude_prune(W, amount) for n, W in weights.items()
            },
            "global (global_magnitude_prune)": {
                n: W * m
                for (n, W), m in zip(weights.items(), impl.global_magnitude_prune(weights, amount).values())
            },
            # the last layer keeps its 10 outputs: structured pruning removes hidden units
            "rows (structured_prune)": {
                n: W * impl.structured_prune(W, amount, dim=0) if n != "layer2" else W
                for n, W in weights.items()
            },
        }
        for label, pruned_weights in pruned.items():
            error = (_mlp(pruned_weights, x) - clean).norm() / clean.norm()
            curves[label].append(float(error))
        # for comparison: the same share of weights, chosen at random (torch.rand, not your code)
        chance = {n: W * (torch.rand(W.shape, generator=gen) >= amount) for n, W in weights.items()}
        baseline.append(float((_mlp(chance, x) - clean).norm() / clean.norm()))
    for label, values in curves.items():
        axes[2].plot(fractions, values, marker="o", markersize=3, label=label)
    axes[2].plot(fractions, baseline, ":", color="gray", label="random weights (torch.rand)")
    axes[2].set_ylim(0, 1.5 * max([*baseline, *(v for values in curves.values() for v in values)]))
    axes[2].set_xlabel("amount pruned")
    axes[2].set_ylabel("relative output error")
    axes[2].set_title("a random MLP pruned by your functions", fontsize=9)
    axes[2].legend(fontsize=7, loc="upper left")

    # The soft term's gradient with respect to the student logits, against T.
    student, teacher = torch.randn(64, 20, generator=gen), torch.randn(64, 20, generator=gen) * 3
    labels = torch.zeros(64, dtype=torch.int64)
    temperatures = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0]
    norms = []
    for T in temperatures:
        s = student.clone().requires_grad_(True)
        loss = torch.as_tensor(impl.distillation_loss(s, teacher, labels, T=T, alpha=1.0))
        (grad,) = torch.autograd.grad(loss, s)
        norms.append(float(grad.norm()))
    axes[3].loglog(temperatures, norms, marker="o", markersize=3, label="your loss (with T²)")
    axes[3].loglog(
        temperatures, [g / T**2 for g, T in zip(norms, temperatures)], "--", label="the same without T²"
    )
    axes[3].set_xlabel("temperature T")
    axes[3].set_ylabel("|d loss / d student logits|")
    axes[3].set_title("distillation_loss(alpha=1): gradient vs T", fontsize=9)
    axes[3].legend(fontsize=7)
    return png(fig), (
        "Your masks on a 16x16 weight (unstructured and row-structured at 50%), the output error of a "
        "random MLP pruned by your three functions, and your soft loss's gradient against the temperature"
    )
