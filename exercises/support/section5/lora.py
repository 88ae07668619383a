"""Support for exercise 5.1 (LoRA): oracles, the inputs its tests draw, toy models and
tasks, its named misconceptions and the figure.

* :func:`lora_output` — the LoRA formula written out in float64, the oracle for
  a layer's forward pass; :func:`lora_gradients` — its gradients, by autograd on it;
  :func:`after_calls` — what a layer holds after a sequence of ``merge()`` /
  ``unmerge()`` calls (its base weight, its output), from the same formula.
* :func:`layer_case`, :func:`merge_calls`, :func:`targets_case` — the hypothesis
  strategies both the public tests and the graders draw from, and :func:`make_layer` /
  :func:`load_random_adapter` to build a learner's layer for a case.
* :func:`tiny_transformer` — a seeded :class:`~llmkit.toymodels.TinyTransformer`,
  a small decoder with the usual projection names (q_proj, k_proj, v_proj,
  o_proj, up_proj, down_proj, lm_head) for target matching and parameter counts.
* :func:`toy_task` — a frozen random MLP and a "teacher" that differs from it by
  a low-rank change of two weight matrices: LoRA can close that gap exactly.
* :func:`finetune` — plain Adam on a module's trainable parameters, written so
  that the module is only called (forward, :func:`value_and_grad`,
  ``load_state_dict``) and only tensors come back.
* :data:`MISCONCEPTIONS` — the known mistakes; each variant computes what the mistaken
  layer returns with the oracles above and another rule (another scale, an unguarded
  merge), never with a LoRA layer.
* :func:`figure` — fine-tuning with the learner's adapters against full fine-tuning,
  and the share of parameters each trains.

The models' architectures live in :mod:`llmkit.toymodels`, in the engine: sandboxed,
graders send these models to the worker pickled, and the worker rebuilds them from
there (it never sees this file).
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass

import torch
from hypothesis import strategies as st
from torch import nn

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    CheckFailure,
    Draw,
    Misconception,
    Misconceptions,
    as_plain_tensor,
    batch_shapes,
    describe_case,
    value_and_grad,
)
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


def lora_gradients(x, g, weight, bias, lora_A, lora_B, scaling: float) -> dict[str, torch.Tensor]:
    """The gradients of ``sum(g * lora_output(x, ...))`` with respect to lora_A, lora_B
    and x (keys ``"lora_A"``, ``"lora_B"``, ``"x"``), by autograd on the oracle."""
    leaves = [t.detach().clone().requires_grad_(True) for t in (lora_A, lora_B, x)]
    a, b, xx = leaves
    out = lora_output(xx, weight, bias, a, b, scaling)
    grads = torch.autograd.grad((out * g.to(out.dtype)).sum(), leaves)
    return dict(zip(("lora_A", "lora_B", "x"), grads))


MERGE_CALLS = ("merge", "unmerge")


def after_calls(
    calls,
    x,
    weight,
    bias,
    lora_A,
    lora_B,
    scaling: float,
    *,
    merge_scale: float | None = None,
    merge_when_merged: bool = False,
    unmerge_when_unmerged: bool = False,
    branch_when_merged: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """``(base.weight, output on x, merged)`` of a layer in eval mode after ``calls`` (each
    ``"merge"`` or ``"unmerge"``), starting unmerged with these A and B, computed in float64.

    The documented rules are the defaults: merge adds ``scaling * B @ A`` (``merge_scale``
    replaces ``scaling`` there) unless already merged; unmerge subtracts it unless not
    merged; a merged layer's output is its base alone. The keyword arguments switch each
    rule, which is what the misconceptions are made of.
    """
    delta = (scaling if merge_scale is None else merge_scale) * (
        lora_B.to(torch.float64) @ lora_A.to(torch.float64)
    )
    w, merged = weight.to(torch.float64), False
    for call in calls:
        if call == "merge":
            if not merged or merge_when_merged:
                w = w + delta
            merged = True
        elif call == "unmerge":
            if merged or unmerge_when_unmerged:
                w = w - delta
            merged = False
        else:
            raise ValueError(f"unknown call {call!r}: expected one of {MERGE_CALLS}")
    branch = scaling if (not merged or branch_when_merged) else 0.0
    stored = w.to(weight.dtype)  # the layer keeps its weight in its own dtype
    return stored, lora_output(x, stored, bias, lora_A, lora_B, branch), merged


# --- the inputs the public tests and graders draw ----------------------------

# 3.5 first: hypothesis shrinks towards it, and at alpha / r in {0.5, 1, 2} or alpha = 1 two of the
# mistakes below give the same numbers (so the diagnosis could name the wrong one).
ALPHAS = st.sampled_from([3.5, 8.0, 16.0, 1.0, 2.0])
LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "lm_head")


@st.composite
def layer_case(draw_st, min_r: int = 1, dtypes=FLOAT_DTYPES):
    """One LoRALinear configuration: sizes, rank, alpha, bias, dtype, batch shape, seed."""
    return dict(
        in_f=draw_st(st.integers(1, 12)),
        out_f=draw_st(st.integers(1, 12)),
        r=draw_st(st.integers(min_r, 6)),
        alpha=draw_st(ALPHAS),
        bias=draw_st(st.booleans()),
        dtype=draw_st(dtypes),
        batch=draw_st(batch_shapes(max_dims=2)),
        seed=draw_st(SEEDS),
    )


def merge_calls(max_size: int = 5):
    """A sequence of 1 to ``max_size`` calls, each "merge" or "unmerge"."""
    return st.lists(st.sampled_from(MERGE_CALLS), min_size=1, max_size=max_size)


@st.composite
def targets_case(draw_st):
    """(sorted target names, r, alpha, seed) for apply_lora on a tiny transformer."""
    names = draw_st(st.lists(st.sampled_from(LINEAR_NAMES), min_size=1, max_size=4, unique=True))
    return sorted(names), draw_st(st.integers(1, 4)), draw_st(ALPHAS), draw_st(SEEDS)


def make_layer(impl, c, dropout: float = 0.0):
    """(the learner's layer for case ``c``, the test's own copy of the base, its weight, its bias)."""
    base = random_linear(c["in_f"], c["out_f"], c["bias"], c["dtype"], c["seed"])
    mine = copy.deepcopy(base)
    layer = impl.LoRALinear(base, c["r"], c["alpha"], dropout)
    bias = None if mine.bias is None else mine.bias.detach()
    return layer, mine, mine.weight.detach(), bias


def load_random_adapter(layer, c, rng: Draw):
    """Give A and B random values (B non-zero, as after some training); return them."""
    a = rng.tensor(c["r"], c["in_f"], dtype=c["dtype"])
    b = rng.tensor(c["out_f"], c["r"], dtype=c["dtype"], scale=1 / math.sqrt(c["r"]))
    layer.load_state_dict({"lora_A": a, "lora_B": b}, strict=False)
    return a, b


def describe(c, **extra) -> str:
    """Case ``c`` as a failure message names it."""
    fields = {key: c[key] for key in ("r", "alpha", "bias", "dtype")}
    return describe_case("LoRALinear", in_features=c["in_f"], out_features=c["out_f"], **fields, **extra)


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


# --- misconceptions: what each known mistake returns, from the oracles above ---


def _scale(r: int, alpha: float) -> float:
    return alpha / r


def _alpha_only(r: int, alpha: float) -> float:
    return alpha


def _forward(scale_of):
    """Forward pass of an unmerged layer, ``(x, weight, bias, lora_A, lora_B, r, alpha)``."""

    def variant(x, weight, bias, lora_A, lora_B, r, alpha):
        return lora_output(x, weight, bias, lora_A, lora_B, scale_of(r, alpha))

    return variant


def _gradient(name: str, scale_of):
    """One gradient of ``sum(g * forward)``, ``(x, g, weight, bias, lora_A, lora_B, r, alpha)``."""

    def variant(x, g, weight, bias, lora_A, lora_B, r, alpha):
        return lora_gradients(x, g, weight, bias, lora_A, lora_B, scale_of(r, alpha))[name]

    return variant


def _after(scale_of=_scale, **rules):
    """The base weight and the output after a sequence of calls, under other rules:
    ``{"base.weight after calls": ..., "output after calls": ...}``, each taking
    ``(calls, x, weight, bias, lora_A, lora_B, r, alpha)``."""

    def part(index):
        def variant(calls, x, weight, bias, lora_A, lora_B, r, alpha):
            return after_calls(calls, x, weight, bias, lora_A, lora_B, scale_of(r, alpha), **rules)[index]

        return variant

    return {"base.weight after calls": part(0), "output after calls": part(1)}


def lora_count(model: nn.Module, targets, r: int) -> dict[str, int]:
    """Parameter counts of ``model`` (not yet adapted) for ``apply_lora(model, targets, r)``:
    ``total``, ``lora`` (r * (in + out) per wrapped layer) and ``wrapped`` (the wrapped
    layers' own weights and biases)."""
    targets = {targets} if isinstance(targets, str) else set(targets)
    wrapped = [
        m
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in targets
    ]
    return dict(
        total=sum(p.numel() for p in model.parameters()),
        lora=sum(r * (m.in_features + m.out_features) for m in wrapped),
        wrapped=sum(p.numel() for m in wrapped for p in m.parameters()),
    )


def _count_with_bases_trainable(model, targets, r):
    n = lora_count(model, targets, r)
    return n["lora"] + n["wrapped"]


def _count_with_rest_trainable(model, targets, r):
    n = lora_count(model, targets, r)
    return n["total"] - n["wrapped"] + n["lora"]


COUNT = "trainable_parameters after apply_lora"

MISCONCEPTIONS = Misconceptions(
    "exercises/section5/README.md",
    Misconception(
        "b_random_init",
        "lora_B initialised at random",
        "B starts at zero, so B @ A = 0 and a fresh adapter returns exactly base(x); A is the random one",
        readme="Initialisation: B at zero, A like a Linear weight",
    ),
    Misconception(
        "a_kaiming_default_a",
        "lora_A with kaiming_uniform_'s default a=0",
        "initialise A like an nn.Linear weight, nn.init.kaiming_uniform_(A, a=math.sqrt(5)): values in "
        "±1/sqrt(in_features); the default a=0 gives a bound sqrt(6) times larger",
        readme="Initialisation: B at zero, A like a Linear weight",
    ),
    Misconception(
        "base_left_trainable",
        "the wrapped nn.Linear left trainable",
        "LoRALinear freezes its base (requires_grad_(False) on base.weight and base.bias): only lora_A "
        "and lora_B train",
        readme="What trains",
        variants={COUNT: _count_with_bases_trainable},
    ),
    Misconception(
        "rest_left_trainable",
        "the rest of the model left trainable",
        "apply_lora freezes every parameter of the model (embeddings, norms, untargeted layers, head) "
        "before adding the adapters",
        readme="What trains",
        variants={COUNT: _count_with_rest_trainable},
    ),
    Misconception(
        "dropout_on_base_path",
        "dropout applied to the base path too",
        "dropout regularises the new branch only: self.base(x) + scaling * self.dropout(x) @ A.T @ B.T",
        readme="Dropout",
    ),
    Misconception(
        "dropout_in_eval",
        "dropout still on in eval mode",
        "F.dropout(x, p) defaults to training=True: use an nn.Dropout module (it follows train() and "
        "eval()) or pass training=self.training",
        readme="Dropout",
    ),
    # The merge misconceptions are listed in this order on purpose: on a failed check the first
    # variant that matches names the mistake, and at some alpha / r two rules coincide.
    Misconception(
        "merge_twice_adds_twice",
        "merge() not guarded by the merged flag",
        "merge() on a merged layer must do nothing (check self.merged first): a second call adds the "
        "update again",
        readme="Merging and unmerging",
        variants=_after(merge_when_merged=True),
    ),
    Misconception(
        "unmerge_unmerged_subtracts",
        "unmerge() not guarded by the merged flag",
        "unmerge() on a layer that is not merged must do nothing: it would subtract an update that was "
        "never added",
        readme="Merging and unmerging",
        variants=_after(unmerge_when_unmerged=True),
    ),
    Misconception(
        "forward_ignores_merged",
        "forward adds the branch after merge()",
        "once merged, the update lives in base.weight: forward returns self.base(x) alone while merged",
        readme="Merging and unmerging",
        variants=_after(branch_when_merged=True),
    ),
    Misconception(
        "merge_without_scaling",
        "merge() adds B @ A without alpha / r",
        "the merged weight must reproduce the forward pass: W + (alpha / r) * B @ A, with the same "
        "scaling as forward",
        readme="Merging and unmerging",
        variants=_after(merge_scale=1.0),
    ),
    Misconception(
        "scale_alpha",
        "scaled by alpha instead of alpha / r",
        "the update is (alpha / r) * B @ A: dividing by r keeps its size when the rank changes",
        readme="The alpha / r scale",
        variants={
            "forward": _forward(_alpha_only),
            "gradient of lora_A": _gradient("lora_A", _alpha_only),
            "gradient of lora_B": _gradient("lora_B", _alpha_only),
            "gradient of x": _gradient("x", _alpha_only),
            **_after(_alpha_only),
        },
    ),
)


@contextlib.contextmanager
def diagnosed_as(slug: str | None):
    """A check failing inside the block names the misconception ``slug``, which the test
    recognised from the layer's state (B non-zero, two eval calls that differ); None: no
    diagnosis, the failure stands as it is."""
    try:
        yield
    except CheckFailure as failure:
        if slug is None:
            raise
        raise MISCONCEPTIONS.failure(slug, str(failure)) from None


# --- the figure -----------------------------------------------------------------

FIGURE_STEPS, FIGURE_LR, FIGURE_RANKS = 60, 1e-2, (1, 2, 4)


def figure(impl) -> Figure:
    """Fine-tuning the toy task's MLP with ``impl``'s adapters (``apply_lora`` on fc1 and fc2,
    ranks 1, 2 and 4, alpha = 2r) against full fine-tuning and the frozen model, and the
    share of parameters each trains, counted with ``impl.trainable_parameters`` (also for
    a TinyTransformer's q_proj and v_proj, and for one 4096 x 4096 ``LoRALinear``)."""
    task = toy_task(seed=1)
    frozen = mse(task.model(task.x), task.y)

    def train(model):
        return finetune(model, task.x, task.y, steps=FIGURE_STEPS, lr=FIGURE_LR)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the learner's A init draws from torch's global generator
        full_model = copy.deepcopy(task.model)
        total = impl.trainable_parameters(full_model)
        curves = [("full fine-tuning", train(full_model))]
        shares = [("toy MLP, full fine-tuning", total, total)]
        for r in FIGURE_RANKS:
            model = impl.apply_lora(copy.deepcopy(task.model), list(task.targets), r=r, alpha=2.0 * r)
            count = impl.trainable_parameters(model)
            curves.append((f"LoRA r={r}", train(model)))
            shares.append((f"toy MLP, LoRA r={r} on fc1, fc2", count, total))
        transformer = tiny_transformer(seed=0)
        t_total = impl.trainable_parameters(transformer)
        adapted = impl.apply_lora(transformer, ["q_proj", "v_proj"], r=4, alpha=8.0)
        t_count = impl.trainable_parameters(adapted)
        shares.append(("tiny transformer, LoRA r=4 on q_proj, v_proj", t_count, t_total))
        big = nn.Linear(4096, 4096, bias=False)
        b_total = impl.trainable_parameters(big)
        b_count = impl.trainable_parameters(impl.LoRALinear(big, r=8, alpha=16.0))
        shares.append(("one 4096 × 4096 projection, LoRA r=8", b_count, b_total))

    fig, (left, right) = new_figure(11.0, 3.8, ncols=2)
    steps = range(FIGURE_STEPS + 1)
    left.axhline(frozen, color="#5f6368", ls="--", lw=1.2, label="frozen model (no fine-tuning)")
    colours = ["#b3261e", "#9cc3f5", "#4a90e2", "#1a4fa0"]
    for (label, losses), colour in zip(curves, colours):
        left.plot(steps, losses, color=colour, lw=1.8, label=label)
    left.set_yscale("log")
    left.set_xlabel("Adam step")
    left.set_ylabel("MSE loss")
    left.set_title("Fine-tuning the toy MLP: your apply_lora vs all weights", fontsize=10)
    left.legend(fontsize=8)

    labels = [label for label, _, _ in shares]
    percent = [100.0 * count / max(whole, 1) for _, count, whole in shares]
    ypos = range(len(shares))
    right.barh(ypos, percent, color=["#b3261e"] + ["#1a73e8"] * (len(shares) - 1))
    right.set_yticks(list(ypos), labels, fontsize=8)
    right.invert_yaxis()
    right.set_xscale("log")
    low = min([p for p in percent if p > 0] or [1.0]) / 3
    right.set_xlim(low, 5000)
    ticks = [t for t in (0.01, 0.1, 1, 10, 100) if t >= low]
    right.set_xticks(ticks, [f"{t:g} %" for t in ticks])
    right.minorticks_off()
    for y, (_, count, whole), p in zip(ypos, shares, percent):
        text = f" {count:,} of {whole:,} ({p:.2f} %)" if p < 1 else f" {count:,} of {whole:,} ({p:.0f} %)"
        right.text(max(p, low), y, text, va="center", fontsize=7)
    right.set_xlabel("trainable parameters, counted by your trainable_parameters", fontsize=9)
    right.set_title("What trains", fontsize=10)
    caption = (
        "Fine-tuning loss with your LoRA adapters (ranks 1, 2, 4) against full fine-tuning and the "
        "frozen model, and the share of trainable parameters"
    )
    return png(fig), caption
