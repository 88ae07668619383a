"""Support for exercise 2.4 (a GPT from your own parts): oracles assembled from torch's
modules, the cases its tests draw, the order-2 Markov source it trains on, the capstone,
its named misconceptions and the figure.

* :class:`TorchBlock` and :class:`TorchGPT` — the reference block and model assembled
  from ``nn.RMSNorm``, ``nn.MultiheadAttention``, ``nn.Linear`` and ``F.silu``, loaded
  from a state dict under the exercise's parameter names (:func:`random_block_state`,
  :func:`random_gpt_state`); their switches (``post_norm``, ``mlp_residual``, ...)
  are what the misconceptions are made of.
* :func:`optimizer_trajectory` — drives an optimiser (the learner's ``AdamW`` or
  ``torch.optim.AdamW``) over a fixed sequence of gradients from the grader's side and
  returns the parameters after every step.
* :func:`markov_source`, :func:`markov_batches`, :func:`validation_loss` — text from a
  known order-2 Markov chain whose entropy rate H is computed exactly, the batches
  ``train`` consumes, and the loss a trained model reaches on fresh text.
* :func:`capstone` — the learner's GPT trained on real text (Python's own documentation,
  shipped with the standard library) with the learner's BPE tokenizer, then sampled.
* :data:`MISCONCEPTIONS`, :func:`check_one_call`, :func:`figure`.

Learner objects are only called, loaded with ``load_state_dict`` and read back as plain
data, so everything here works on sandboxed handles too.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
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
    as_plain_tensor,
    assert_close,
    pipelined,
)

# --- reference modules, from torch's own parts ------------------------------------


def block_state_names(prefix: str = "") -> list[str]:
    """The parameter names of one ``Block`` (bias-free attention)."""
    names = ["norm1.weight", "norm2.weight", "mlp.w1.weight", "mlp.w3.weight", "mlp.w2.weight"]
    names += [f"attn.{p}.weight" for p in ("q_proj", "k_proj", "v_proj", "out_proj")]
    return [prefix + n for n in names]


def random_block_state(
    d: int, hidden: int, seed: int, dtype: torch.dtype = torch.float32, prefix: str = ""
) -> dict[str, torch.Tensor]:
    """Seeded weights for a Block under the exercise's names (RMSNorm weights around 1)."""
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, scale):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype)

    state = {
        "norm1.weight": 1 + randn(d, scale=0.2),
        "norm2.weight": 1 + randn(d, scale=0.2),
        "mlp.w1.weight": randn(hidden, d, scale=d**-0.5),
        "mlp.w3.weight": randn(hidden, d, scale=d**-0.5),
        "mlp.w2.weight": randn(d, hidden, scale=hidden**-0.5),
    }
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        state[f"attn.{proj}.weight"] = randn(d, d, scale=d**-0.5)
    return {prefix + k: v for k, v in state.items()}


class TorchBlock(nn.Module):
    """A pre-norm block from ``nn.RMSNorm``, ``nn.MultiheadAttention`` (no bias) and a
    SwiGLU of ``nn.Linear`` + ``F.silu``. The switches build the known mistakes:
    ``post_norm`` (normalise after each residual add), ``mlp_residual=False``,
    ``see_self=False`` (the causal mask hides the diagonal; a query that sees nothing
    gets zeros), ``gate_on_w3`` (silu on the w3 branch)."""

    def __init__(
        self,
        d: int,
        n_heads: int,
        hidden: int,
        *,
        eps: float = 1e-5,
        post_norm: bool = False,
        mlp_residual: bool = True,
        see_self: bool = True,
        gate_on_w3: bool = False,
    ):
        super().__init__()
        self.norm1 = nn.RMSNorm(d, eps=eps)
        self.norm2 = nn.RMSNorm(d, eps=eps)
        self.mha = nn.MultiheadAttention(d, n_heads, bias=False, batch_first=True)
        self.w1 = nn.Linear(d, hidden, bias=False)
        self.w3 = nn.Linear(d, hidden, bias=False)
        self.w2 = nn.Linear(hidden, d, bias=False)
        self.post_norm, self.mlp_residual, self.see_self, self.gate_on_w3 = (
            post_norm,
            mlp_residual,
            see_self,
            gate_on_w3,
        )

    def load_learner_state(self, state: dict[str, torch.Tensor], prefix: str = "") -> TorchBlock:
        with torch.no_grad():
            self.norm1.weight.copy_(state[prefix + "norm1.weight"])
            self.norm2.weight.copy_(state[prefix + "norm2.weight"])
            for name in ("w1", "w2", "w3"):
                getattr(self, name).weight.copy_(state[f"{prefix}mlp.{name}.weight"])
            packed = [state[f"{prefix}attn.{p}.weight"] for p in ("q_proj", "k_proj", "v_proj")]
            self.mha.in_proj_weight.copy_(torch.cat(packed))
            self.mha.out_proj.weight.copy_(state[prefix + "attn.out_proj.weight"])
        return self

    def learner_named(self, tensors: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
        """Per-parameter tensors of this module (e.g. gradients) under the learner's names."""
        out = {
            prefix + "norm1.weight": tensors["norm1.weight"],
            prefix + "norm2.weight": tensors["norm2.weight"],
            prefix + "attn.out_proj.weight": tensors["mha.out_proj.weight"],
        }
        for name in ("w1", "w2", "w3"):
            out[f"{prefix}mlp.{name}.weight"] = tensors[f"{name}.weight"]
        for proj, part in zip(("q_proj", "k_proj", "v_proj"), tensors["mha.in_proj_weight"].chunk(3)):
            out[f"{prefix}attn.{proj}.weight"] = part
        return out

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        blocked = ~torch.ones(t, t, dtype=torch.bool).tril(0 if self.see_self else -1)
        out = self.mha(x, x, x, attn_mask=blocked, need_weights=False)[0]
        # A query that may see no key: NaN from torch, zeros by the exercise's convention
        # (and out_proj has no bias, so zeros stay zeros).
        return torch.nan_to_num(out, nan=0.0) if not self.see_self else out

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.w1(x), self.w3(x)
        return self.w2(a * F.silu(b) if self.gate_on_w3 else F.silu(a) * b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.post_norm:
            x = self.norm1(x + self.attention(x))
            return self.norm2(x + self.mlp(x))
        x = x + self.attention(self.norm1(x))
        branch = self.mlp(self.norm2(x))
        return x + branch if self.mlp_residual else branch


def torch_block(state, d, n_heads, hidden, dtype=torch.float32, **switches) -> TorchBlock:
    """A :class:`TorchBlock` holding ``state`` (learner names), in ``dtype``."""
    return TorchBlock(d, n_heads, hidden, **switches).to(dtype).load_learner_state(state).eval()


def random_gpt_state(
    vocab: int, d: int, n_layers: int, context: int, hidden: int, seed: int, dtype=torch.float32
) -> dict[str, torch.Tensor]:
    """Seeded weights for a GPT under the exercise's names; ``lm_head.weight`` is the
    token embedding (tied)."""
    gen = torch.Generator().manual_seed(seed)
    state = {
        "tok_emb.weight": torch.randn(vocab, d, generator=gen, dtype=torch.float64).to(dtype),
        "pos_emb.weight": (0.5 * torch.randn(context, d, generator=gen, dtype=torch.float64)).to(dtype),
        "norm.weight": (1 + 0.2 * torch.randn(d, generator=gen, dtype=torch.float64)).to(dtype),
    }
    for i in range(n_layers):
        state.update(random_block_state(d, hidden, seed * 101 + i + 1, dtype, prefix=f"blocks.{i}."))
    state["lm_head.weight"] = state["tok_emb.weight"]
    return state


def init_gpt_state(vocab: int, d: int, n_layers: int, context: int, hidden: int, seed: int):
    """The documented initialisation, seeded: normal(0, 0.02) for every Linear and
    Embedding weight, ones for the RMSNorm weights, the head tied to the embedding."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in gpt_shapes(vocab, d, n_layers, context, hidden).items():
        if name.endswith(("norm.weight", "norm1.weight", "norm2.weight")):
            state[name] = torch.ones(shape)
        elif name != "lm_head.weight":
            state[name] = 0.02 * torch.randn(shape, generator=gen)
    state["lm_head.weight"] = state["tok_emb.weight"]
    return state


def gpt_shapes(vocab: int, d: int, n_layers: int, context: int, hidden: int) -> dict[str, tuple[int, ...]]:
    shapes = {"tok_emb.weight": (vocab, d), "pos_emb.weight": (context, d)}
    for i in range(n_layers):
        p = f"blocks.{i}."
        shapes.update({p + "norm1.weight": (d,), p + "norm2.weight": (d,)})
        shapes.update({f"{p}attn.{q}.weight": (d, d) for q in ("q_proj", "k_proj", "v_proj", "out_proj")})
        shapes.update({p + "mlp.w1.weight": (hidden, d), p + "mlp.w3.weight": (hidden, d)})
        shapes[p + "mlp.w2.weight"] = (d, hidden)
    shapes.update({"norm.weight": (d,), "lm_head.weight": (vocab, d)})
    return shapes


def tied_parameter_count(vocab: int, d: int, n_layers: int, context: int, hidden: int) -> int:
    """The number of parameters of a GPT whose head is tied to its embedding."""
    shapes = gpt_shapes(vocab, d, n_layers, context, hidden)
    return sum(math.prod(s) for name, s in shapes.items() if name != "lm_head.weight")


class TorchGPT(nn.Module):
    """The reference model: ``nn.Embedding`` x 2, :class:`TorchBlock` s, ``nn.RMSNorm``
    and a head that reuses the token embedding's matrix (tied)."""

    def __init__(self, vocab, d, n_layers, n_heads, context, hidden, **switches):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, d)
        self.pos_emb = nn.Embedding(context, d)
        self.blocks = nn.ModuleList(TorchBlock(d, n_heads, hidden, **switches) for _ in range(n_layers))
        self.norm = nn.RMSNorm(d, eps=1e-5)

    def load_learner_state(self, state: dict[str, torch.Tensor]) -> TorchGPT:
        with torch.no_grad():
            self.tok_emb.weight.copy_(state["tok_emb.weight"])
            self.pos_emb.weight.copy_(state["pos_emb.weight"])
            self.norm.weight.copy_(state["norm.weight"])
        for i, block in enumerate(self.blocks):
            block.load_learner_state(state, prefix=f"blocks.{i}.")
        return self

    def learner_named(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {k: tensors[k] for k in ("tok_emb.weight", "pos_emb.weight", "norm.weight")}
        for i in range(len(self.blocks)):
            prefix = f"blocks.{i}."
            inner = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
            out.update(self.blocks[i].learner_named(inner, prefix=prefix))
        return out

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.norm(x) @ self.tok_emb.weight.T


def torch_gpt(state, vocab, d, n_layers, n_heads, context, hidden, dtype=torch.float32, **switches):
    model = TorchGPT(vocab, d, n_layers, n_heads, context, hidden, **switches).to(dtype)
    return model.load_learner_state(state).eval()


# --- the cases the public tests and graders draw -----------------------------------


@st.composite
def norm_case(draw_st):
    """(batch shape, d, eps, input scale, dtype, seed) for RMSNorm. Small scales and large
    eps make the place of eps visible."""
    return dict(
        batch=tuple(draw_st(st.lists(st.integers(1, 4), min_size=0, max_size=2))),
        d=draw_st(st.integers(1, 12)),
        eps=draw_st(st.sampled_from([0.1, 1e-5, 1e-2, 1.0])),
        scale=draw_st(st.sampled_from([1e-2, 1.0, 3.0, 1e-3])),
        dtype=draw_st(FLOAT_DTYPES),
        seed=draw_st(SEEDS),
    )


@st.composite
def block_case(draw_st, max_t: int = 7):
    """One Block configuration and input: heads, sizes, dtype, seed."""
    n_heads = draw_st(st.integers(1, 3))
    return dict(
        n_heads=n_heads,
        d=n_heads * draw_st(st.integers(1, 4)),
        hidden=draw_st(st.integers(1, 12)),
        b=draw_st(st.integers(1, 3)),
        t=draw_st(st.integers(1, max_t)),
        dtype=draw_st(FLOAT_DTYPES),
        seed=draw_st(SEEDS),
    )


@st.composite
def gpt_case(draw_st):
    """One small GPT configuration and input."""
    n_heads = draw_st(st.integers(1, 2))
    context = draw_st(st.integers(2, 8))
    return dict(
        vocab=draw_st(st.integers(2, 11)),
        d=n_heads * draw_st(st.integers(1, 4)),
        n_layers=draw_st(st.integers(1, 2)),
        n_heads=n_heads,
        context=context,
        hidden=draw_st(st.integers(1, 10)),
        b=draw_st(st.integers(1, 2)),
        t=draw_st(st.integers(1, context)),
        seed=draw_st(SEEDS),
    )


def describe_gpt(c) -> str:
    keys = ("vocab", "d", "n_layers", "n_heads", "context", "hidden")
    return ", ".join(f"{k}={c[k]}" for k in keys) + f", input ({c['b']}, {c['t']})"


def gpt_args(c) -> tuple[int, ...]:
    return c["vocab"], c["d"], c["n_layers"], c["n_heads"], c["context"]


def learner_gpt(impl, c, dtype=torch.float32):
    """(the learner's GPT for case ``c`` holding seeded weights, those weights)."""
    state = random_gpt_state(c["vocab"], c["d"], c["n_layers"], c["context"], c["hidden"], c["seed"], dtype)
    model = impl.GPT(*gpt_args(c), hidden=c["hidden"]).to(dtype)
    model.load_state_dict(state)
    return model, state


def learner_block(impl, c, attention=None):
    """(the learner's Block for case ``c`` holding seeded weights, those weights)."""
    state = random_block_state(c["d"], c["hidden"], c["seed"], c["dtype"])
    block = impl.Block(c["d"], c["n_heads"], c["hidden"], attention=attention).to(c["dtype"])
    block.load_state_dict(state)
    return block, state


@st.composite
def cross_entropy_case(draw_st):
    """(batch shape, V, logit scale, share of ignored targets, ignore_index, dtype, seed)."""
    return dict(
        batch=tuple(draw_st(st.lists(st.integers(1, 5), min_size=1, max_size=2))),
        v=draw_st(st.integers(2, 9)),
        scale=draw_st(st.sampled_from([3.0, 1000.0, 1.0, 30.0])),
        ignored=draw_st(st.sampled_from([0.0, 0.3, 0.6])),
        ignore_index=draw_st(st.sampled_from([-100, -1, 0])),
        dtype=draw_st(FLOAT_DTYPES),
        seed=draw_st(SEEDS),
    )


# Always tried first (hypothesis @example): a batch with ignored targets, where a mean over
# every position differs from torch's; a few drawn cases can all ignore none.
CROSS_ENTROPY_WITH_IGNORED = dict(
    batch=(3, 5), v=7, scale=3.0, ignored=0.6, ignore_index=-100, dtype=torch.float32, seed=5
)


def cross_entropy_inputs(c):
    """(logits, targets) for a :func:`cross_entropy_case`; at least one target counts."""
    gen = torch.Generator().manual_seed(c["seed"])
    logits = (torch.randn(*c["batch"], c["v"], generator=gen, dtype=torch.float64) * c["scale"]).to(
        c["dtype"]
    )
    targets = torch.randint(0, c["v"], c["batch"], generator=gen)
    drop = torch.rand(c["batch"], generator=gen) < c["ignored"]
    drop.view(-1)[0] = False
    if c["ignore_index"] >= 0:  # a class id used as the ignore value: targets never take it
        targets = torch.where(targets == c["ignore_index"], (targets + 1) % c["v"], targets)
    targets = targets.masked_fill(drop, c["ignore_index"])
    return logits, targets


def torch_cross_entropy(logits, targets, ignore_index=-100) -> torch.Tensor:
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=ignore_index
    )


# --- optimisers driven from the grader's side ----------------------------------------

# (lr, betas, eps, weight_decay): the hyper-parameter sets the tests run.
ADAMW_SETTINGS = (
    (1e-2, (0.9, 0.999), 1e-8, 0.1),
    (3e-3, (0.8, 0.95), 1e-6, 0.0),
    (5e-2, (0.5, 0.9), 1e-3, 0.5),
    (1e-3, (0.9, 0.99), 1e-8, 0.01),
)


def optimizer_problem(seed: int, steps: int, shapes=((3, 4), (5,), (1,))):
    """Starting parameters and one gradient per step and parameter (some steps leave a
    parameter without gradient, as a frozen or unused one)."""
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen) for s in shapes]
    grads = []
    for step in range(steps):
        row = [torch.randn(s, generator=gen) * (0.1 + step % 3) for s in shapes]
        if step % 7 == 5:
            row[-1] = None
        grads.append(row)
    return params, grads


def optimizer_trajectory(make_optimizer, params, grads) -> list[list[torch.Tensor]]:
    """The parameters after every step of ``make_optimizer(list_of_parameters)``, fed
    ``grads`` (one list per step; None leaves that parameter without gradient).

    Works on a sandboxed optimiser: the parameters it holds are reached through its
    ``param_groups``, their ``.grad`` is set there and the values are read back as data."""
    start = [p.detach().clone().requires_grad_(True) for p in params]
    opt = make_optimizer(start)
    with pipelined(opt):  # sandboxed: handles on the tensors the optimiser holds, not copies
        held = [opt.param_groups[0]["params"][i] for i in range(len(start))]
    out = []
    for row in grads:
        for p, g in zip(held, row):
            p.grad = None if g is None else g.clone()
        opt.step()
        groups = opt.param_groups
        out.append([as_plain_tensor(p, "a parameter").detach().clone() for p in groups[0]["params"]])
    return out


def torch_adamw(lr, betas, eps, weight_decay):
    return lambda params: torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def _adam_l2(params, grads, lr, betas, eps, weight_decay):
    """Adam with weight decay added to the gradient: ``torch.optim.Adam``'s own weight_decay."""
    return optimizer_trajectory(
        lambda ps: torch.optim.Adam(ps, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay), params, grads
    )


class _NoBiasCorrection:
    """AdamW without bias correction, from ``torch.optim.AdamW``: lr * m / (sqrt(v) + eps)
    is AdamW's step with lr * (1 - b1^t) / sqrt(1 - b2^t) and eps / sqrt(1 - b2^t); the
    decay, which uses the plain lr, is applied first by hand."""

    def __init__(self, params, lr, betas, eps, weight_decay):
        self.lr, self.betas, self.eps, self.wd, self.t = lr, betas, eps, weight_decay, 0
        self.opt = torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=0.0)
        self.param_groups = self.opt.param_groups

    def step(self):
        self.t += 1
        b1, b2 = self.betas
        c2 = math.sqrt(1 - b2**self.t)
        group = self.opt.param_groups[0]
        group["lr"], group["eps"] = self.lr * (1 - b1**self.t) / c2, self.eps / c2
        with torch.no_grad():
            for p in group["params"]:
                if p.grad is not None:
                    p.mul_(1 - self.lr * self.wd)
        self.opt.step()


def _no_bias_correction(params, grads, lr, betas, eps, weight_decay):
    return optimizer_trajectory(lambda ps: _NoBiasCorrection(ps, lr, betas, eps, weight_decay), params, grads)


def check_trajectory(got, want, what: str, suspects=None) -> None:
    """Every parameter after every step, as ``assert_close`` sees it (the first step that
    differs is reported)."""
    for step, (g_row, w_row) in enumerate(zip(got, want), start=1):
        for i, (g, w) in enumerate(zip(g_row, w_row)):
            assert_close(
                g,
                w,
                name=f"{what}: parameter {i} after step {step}",
                rtol=1e-4,
                atol=1e-5,
                suspects=None if suspects is None else _at(suspects, step - 1, i),
            )


class _at:
    """Suspects whose variants return whole trajectories, narrowed to one step and one parameter."""

    def __init__(self, suspects, step: int, index: int):
        self.suspects, self.step, self.index = suspects, step, index

    def first_match(self, accepts):
        return self.suspects.first_match(lambda trajectory: accepts(trajectory[self.step][self.index]))


def schedule_oracle(total_steps: int, max_lr: float, warmup_steps: int, min_lr: float) -> list[float]:
    """The learning rates of every step from torch's own schedulers: ``LinearLR`` warm-up
    chained to ``CosineAnnealingLR`` with ``SequentialLR``."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=max_lr)
    warm = torch.optim.lr_scheduler.LinearLR(
        opt, start_factor=1 / warmup_steps, end_factor=1.0, total_iters=warmup_steps - 1
    )
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps - warmup_steps, eta_min=min_lr)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cosine], milestones=[warmup_steps])
    out = []
    for _ in range(total_steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


# --- the order-2 Markov source ---------------------------------------------------------


@dataclass(frozen=True)
class Training:
    """The training target's sizes and budget (shared by the public test, the grader and
    the figure)."""

    vocab: int = 6
    alpha: float = 0.3  # Dirichlet concentration of the next-token distributions
    d: int = 32
    n_layers: int = 1
    n_heads: int = 4
    context: int = 8
    steps: int = 300
    batch: int = 64
    max_lr: float = 2e-2
    warmup_steps: int = 20
    min_lr: float = 2e-3
    weight_decay: float = 0.1
    margin: float = 0.15  # nats above the entropy rate
    n_val: int = 256

    def model_args(self) -> tuple[int, ...]:
        return self.vocab, self.d, self.n_layers, self.n_heads, self.context

    def hyper(self) -> dict:
        return dict(
            max_lr=self.max_lr,
            warmup_steps=self.warmup_steps,
            min_lr=self.min_lr,
            weight_decay=self.weight_decay,
        )


TRAINING = Training()


def markov_source(seed: int, vocab: int = TRAINING.vocab, alpha: float = TRAINING.alpha):
    """``(P, H, pi)``: next-token probabilities ``P[a, b, c] = p(c | a, b)`` (each row
    drawn from a Dirichlet(alpha)), the entropy rate H in nats and the stationary
    distribution ``pi`` of the pair chain (a, b) -> (b, c), flattened to a * vocab + b.

    H is exact: ``sum over pairs of pi(a, b) * entropy(P[a, b])``, with pi the left
    eigenvector of the pair chain's transition matrix for eigenvalue 1."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(vocab, alpha), size=(vocab, vocab))
    probs = np.maximum(probs, 1e-12)
    probs /= probs.sum(axis=-1, keepdims=True)
    n = vocab * vocab
    chain = np.zeros((n, n))
    for a in range(vocab):
        for b in range(vocab):
            chain[a * vocab + b, b * vocab : (b + 1) * vocab] = probs[a, b]
    values, vectors = np.linalg.eig(chain.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    pi = np.abs(pi) / np.abs(pi).sum()
    entropies = -(probs * np.log(probs)).sum(axis=-1).reshape(-1)
    return torch.from_numpy(probs), float(pi @ entropies), torch.from_numpy(pi)


def sample_markov(probs: torch.Tensor, pi: torch.Tensor, n: int, length: int, seed: int) -> torch.Tensor:
    """``n`` sequences of ``length`` tokens (int64), each started from the stationary pair
    distribution, so every position is distributed as the chain in equilibrium."""
    vocab = probs.shape[0]
    gen = torch.Generator().manual_seed(seed)
    first = torch.multinomial(pi, n, replacement=True, generator=gen)
    seq = torch.empty(n, length, dtype=torch.long)
    seq[:, 0], seq[:, 1] = first // vocab, first % vocab
    cumulative = probs.cumsum(-1)
    u = torch.rand(n, length, generator=gen, dtype=torch.float64)
    for t in range(2, length):
        rows = cumulative[seq[:, t - 2], seq[:, t - 1]]
        seq[:, t] = torch.searchsorted(rows, u[:, t : t + 1].contiguous()).squeeze(1).clamp(max=vocab - 1)
    return seq


def markov_batches(seed: int, cfg: Training = TRAINING):
    """``(batches, validation, H)``: ``cfg.steps`` (inputs, targets) pairs of (batch,
    context) for ``train``, ``cfg.n_val`` fresh sequences of context + 1 tokens, and the
    source's entropy rate."""
    probs, entropy_rate, pi = markov_source(seed, cfg.vocab, cfg.alpha)
    data = sample_markov(probs, pi, cfg.steps * cfg.batch, cfg.context + 1, seed=2 * seed + 1)
    data = data.view(cfg.steps, cfg.batch, cfg.context + 1)
    batches = [(chunk[:, :-1].clone(), chunk[:, 1:].clone()) for chunk in data]
    validation = sample_markov(probs, pi, cfg.n_val, cfg.context + 1, seed=2 * seed + 2)
    return batches, validation, entropy_rate


def validation_loss(model, validation: torch.Tensor) -> float:
    """Mean cross-entropy (nats, ``F.cross_entropy``) of ``model`` on the validation
    sequences, over the targets that have two tokens of context (the first target of each
    sequence, with one, is left out: no model can reach H there)."""
    with torch.no_grad():
        logits = as_plain_tensor(model(validation[:, :-1]), "logits").to(torch.float64)
    targets = validation[:, 1:].clone()
    targets[:, 0] = -100
    return float(torch_cross_entropy(logits, targets))


def train_on_markov(impl, seed: int, cfg: Training = TRAINING):
    """Train a fresh learner GPT (the documented initialisation, seeded) with the
    learner's ``train`` on the source of ``seed``: ``(training losses, validation loss, H,
    CPU seconds of the call)``. The CPU time is this process's, so it is only meaningful
    in-process (the grader's speed tests use the engine's harness)."""
    batches, validation, entropy_rate = markov_batches(seed, cfg)
    model = impl.GPT(*cfg.model_args())
    model.load_state_dict(init_gpt_state(cfg.vocab, cfg.d, cfg.n_layers, cfg.context, 4 * cfg.d, seed))
    start = time.process_time()
    losses = impl.train(model, batches, cfg.steps, **cfg.hyper())
    seconds = time.process_time() - start
    return [float(x) for x in losses], validation_loss(model, validation), entropy_rate, seconds


def rmsnorm_pair(impl, c: dict):
    """For a :func:`norm_case` ``c``: (the case's Draw, an input x, the learner's RMSNorm and
    torch's ``nn.RMSNorm``, both holding the same random weight)."""
    rng = Draw(c["seed"])
    x = rng.tensor(*c["batch"], c["d"], dtype=c["dtype"], scale=c["scale"])
    weight = 1 + rng.tensor(c["d"], dtype=c["dtype"], scale=0.3)
    norm = impl.RMSNorm(c["d"], eps=c["eps"]).to(c["dtype"])
    norm.load_state_dict({"weight": weight})
    torch_norm = torch.nn.RMSNorm(c["d"], eps=c["eps"]).to(c["dtype"])
    torch_norm.load_state_dict({"weight": weight})
    return rng, x, norm, torch_norm


def check_train(impl, c: dict, batch: int, steps: int, hyper: dict) -> None:
    """The learner's ``train`` on a float64 GPT of config ``c`` (``seed`` included) for ``steps``
    steps of random batches: the losses it returns and the final weights against
    :func:`reference_training`, step for step."""
    sizes = (c["vocab"], c["d"], c["n_layers"], c["context"], c["hidden"])
    state = random_gpt_state(*sizes, seed=c["seed"], dtype=torch.float64)
    model = impl.GPT(*gpt_args(c), hidden=c["hidden"]).to(torch.float64)
    model.load_state_dict(state)
    gen = torch.Generator().manual_seed(c["seed"])
    shape = (batch, c["context"])
    batches = [
        tuple(torch.randint(0, c["vocab"], shape, generator=gen) for _ in range(2)) for _ in range(steps)
    ]
    losses = impl.train(model, batches, steps, **hyper)
    want_losses, want_state = reference_training(state, c, batches, steps, hyper)
    assert_close(
        torch.tensor(losses, dtype=torch.float64),
        torch.tensor(want_losses, dtype=torch.float64),
        name="the losses train() returns, step by step",
        suspects=MISCONCEPTIONS.on("train", state, c, batches, steps, hyper),
    )
    got_state = model.state_dict()
    for name, want in want_state.items():
        assert_close(got_state[name], want, name=f"{name} after {steps} training steps")


def reference_training(state, c, batches, steps: int, hyper: dict, *, zero_grad: bool = True):
    """What ``train`` does, from torch's parts: a :class:`TorchGPT` in float64 holding
    ``state``, ``torch.optim.AdamW`` (betas (0.9, 0.95)), ``F.cross_entropy`` and the rates
    of :func:`schedule_oracle`. Returns (losses, final weights under the learner's names).
    ``zero_grad=False`` lets gradients pile up across steps (a known mistake)."""
    model = torch_gpt(state, *gpt_args(c), c["hidden"], dtype=torch.float64).train()
    opt = torch.optim.AdamW(
        model.parameters(), lr=hyper["max_lr"], betas=(0.9, 0.95), weight_decay=hyper["weight_decay"]
    )
    rates = schedule_oracle(steps, hyper["max_lr"], hyper["warmup_steps"], hyper["min_lr"])
    losses = []
    for step, (inputs, targets) in zip(range(steps), batches):
        opt.param_groups[0]["lr"] = rates[step]
        loss = torch_cross_entropy(model(inputs), targets)
        if zero_grad:
            opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    named = model.learner_named({n: p.detach().clone() for n, p in model.named_parameters()})
    return losses, named


# --- the capstone: your GPT on real text ----------------------------------------------


def corpus(chars: int = 100_000) -> str:
    """English text that ships with Python: the standard library's documentation topics
    (``pydoc_data.topics``, what ``help("if")`` shows), about 460k characters, in a fixed
    order; the first ``chars`` of it."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in sorted(topics))[:chars]


def sample(model, prompt_ids: list[int], n_tokens: int, context: int, temperature: float, seed: int):
    """Plain multinomial sampling: ``n_tokens`` ids after ``prompt_ids``, each drawn from
    softmax(last logits / temperature) with the window cropped to ``context``."""
    gen = torch.Generator().manual_seed(seed)
    ids = list(prompt_ids)
    with torch.no_grad():
        for _ in range(n_tokens):
            window = torch.tensor([ids[-context:]])
            logits = as_plain_tensor(model(window), "logits")[0, -1].to(torch.float64)
            probs = torch.softmax(logits / temperature, dim=-1)
            ids.append(int(torch.multinomial(probs, 1, generator=gen)))
    return ids[len(prompt_ids) :]


def capstone(
    gpt,
    bpe=None,
    *,
    steps: int = 400,
    chars: int = 100_000,
    vocab_size: int = 512,
    d: int = 64,
    n_layers: int = 2,
    n_heads: int = 4,
    context: int = 64,
    batch: int = 16,
    max_lr: float = 3e-3,
    temperature: float = 0.8,
    prompt: str = "The ",
    sample_tokens: int = 120,
    n_samples: int = 2,
    seed: int = 0,
) -> dict:
    """Your GPT (``gpt``, your 2.4 module) trained on Python's documentation, then sampled.

    ``bpe`` is your 2.1 module: its ``train_bpe`` learns a ``vocab_size`` vocabulary on the
    text and its ``Tokenizer`` encodes it. With ``bpe=None``, or while 2.1 raises
    NotImplementedError, the tokens are the text's UTF-8 bytes (vocabulary 256), and
    ``"tokens"`` in the result says so. Returns a dict: ``losses`` (per step), ``samples``
    (strings), ``tokens`` (which tokenizer), ``vocab_size``, ``n_tokens`` (of the text),
    ``seconds``."""
    text = corpus(chars)
    encode = decode = None
    tokens = "bytes (2.1 not given)"
    if bpe is not None:
        try:
            vocab, merges = bpe.train_bpe(text, vocab_size)
            tokenizer = bpe.Tokenizer(vocab, merges)
            encode, decode, size = tokenizer.encode, tokenizer.decode, len(vocab)
            tokens = f"your BPE (2.1), {size} tokens"
        except NotImplementedError:
            tokens = "bytes (2.1 not done yet)"
    if encode is None:
        size = 256

        def encode(s):
            return list(s.encode("utf-8"))

        def decode(ids):
            return bytes(ids).decode("utf-8", errors="replace")

    ids = torch.tensor(encode(text), dtype=torch.long)
    if len(ids) <= context + 1:
        raise ValueError(f"the text gives {len(ids)} tokens: fewer than context + 1 = {context + 1}")
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - context - 1, (steps, batch), generator=gen)
    windows = ids[starts.unsqueeze(-1) + torch.arange(context + 1)]
    batches = [(w[:, :-1], w[:, 1:]) for w in windows]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = gpt.GPT(size, d, n_layers, n_heads, context)
    began = time.perf_counter()
    losses = gpt.train(
        model, batches, steps, max_lr=max_lr, warmup_steps=max(1, steps // 20), min_lr=max_lr / 10
    )
    model.eval()
    prompt_ids = encode(prompt)
    samples = [
        prompt + decode(sample(model, prompt_ids, sample_tokens, context, temperature, seed + k))
        for k in range(n_samples)
    ]
    return dict(
        losses=[float(x) for x in losses],
        samples=samples,
        tokens=tokens,
        vocab_size=size,
        n_tokens=len(ids),
        seconds=time.perf_counter() - began,
    )


# --- misconceptions: what each known mistake returns, from the oracles above ----------


def _block_with(**switches):
    def variant(state, x, n_heads, hidden):
        return torch_block(state, x.shape[-1], n_heads, hidden, x.dtype, **switches)(x)

    return variant


def _gpt_with(**switches):
    def variant(state, idx, c):
        return torch_gpt(state, *gpt_args(c), c["hidden"], state["norm.weight"].dtype, **switches)(idx)

    return variant


def _swiglu_gate_on_w3(state, x):
    w1, w3, w2 = (state[f"w{i}.weight"] for i in (1, 3, 2))
    return F.linear(F.linear(x, w1) * F.silu(F.linear(x, w3)), w2)


def _naive_cross_entropy(logits, targets, ignore_index=-100):
    """log(sum(exp(logits))) without subtracting the maximum."""
    logits, targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    keep = targets != ignore_index
    picked = logits.gather(1, targets.clamp(min=0).unsqueeze(1)).squeeze(1)
    losses = logits.exp().sum(-1).log() - picked
    return losses[keep].mean()


def _mean_over_every_position(logits, targets, ignore_index=-100):
    total = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=ignore_index, reduction="sum"
    )
    return total / targets.numel()


def _training(**switches):
    def variant(state, c, batches, steps, hyper):
        losses = reference_training(state, c, batches, steps, hyper, **switches)[0]
        return torch.tensor(losses, dtype=torch.float64)

    return variant


MISCONCEPTIONS = Misconceptions(
    "exercises/section2/README.md",
    Misconception(
        "rmsnorm_subtracts_mean",
        "RMSNorm that subtracts the mean",
        "that is LayerNorm: RMSNorm divides x by sqrt(mean(x**2) + eps) and never centres it",
        readme="2.4 — RMSNorm",
        variants={"RMSNorm": lambda x, weight, eps: F.layer_norm(x, (x.shape[-1],), weight, None, eps)},
    ),
    Misconception(
        "eps_outside_sqrt",
        "eps added outside the square root",
        "x / (sqrt(mean(x**2)) + eps) is not nn.RMSNorm: eps goes inside, rsqrt(mean(x**2) + eps)",
        readme="2.4 — RMSNorm",
        variants={
            "RMSNorm": lambda x, weight, eps: x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * weight
        },
    ),
    Misconception(
        "gate_on_wrong_branch",
        "the SwiGLU gate on the wrong branch",
        "silu goes on w1's output, which gates w3's linear output: w2(silu(w1 x) * w3 x)",
        readme="2.4 — SwiGLU",
        variants={
            "SwiGLU": _swiglu_gate_on_w3,
            "Block": _block_with(gate_on_w3=True),
            "GPT": _gpt_with(gate_on_w3=True),
        },
    ),
    Misconception(
        "post_norm",
        "post-norm instead of pre-norm",
        "normalise the branch input, x + attn(norm1(x)), not the sum, norm1(x + attn(x))",
        readme="2.4 — Pre-norm residual blocks",
        variants={"Block": _block_with(post_norm=True), "GPT": _gpt_with(post_norm=True)},
    ),
    Misconception(
        "no_mlp_residual",
        "the MLP's residual missing",
        "both branches add to the stream: x = x + mlp(norm2(x)), not x = mlp(norm2(x))",
        readme="2.4 — Pre-norm residual blocks",
        variants={"Block": _block_with(mlp_residual=False), "GPT": _gpt_with(mlp_residual=False)},
    ),
    Misconception(
        "causal_mask_hides_diagonal",
        "the causal mask hides the diagonal",
        "position i may see positions 0..i, itself included: ones(T, T).tril(), not tril(-1)",
        readme="2.4 — Pre-norm residual blocks",
        variants={"Block": _block_with(see_self=False), "GPT": _gpt_with(see_self=False)},
    ),
    Misconception(
        "unstable_cross_entropy",
        "cross-entropy that overflows",
        "exp(1000) is inf: subtract each row's maximum before exp(), log-sum-exp = m + log(sum(exp(x - m)))",
        readme="2.4 — A stable cross-entropy",
        variants={"cross_entropy": _naive_cross_entropy},
    ),
    Misconception(
        "mean_over_ignored",
        "the loss averaged over ignored positions too",
        "ignored targets neither add to the sum nor count in the mean: divide by the number that count",
        readme="2.4 — A stable cross-entropy",
        variants={"cross_entropy": _mean_over_every_position},
    ),
    Misconception(
        "adam_l2",
        "Adam with L2: weight decay added to the gradient",
        "AdamW decays the weights directly, p *= 1 - lr * weight_decay, outside the moments; "
        "g + wd * p is Adam's L2 (torch.optim.Adam's weight_decay)",
        readme="2.4 — AdamW",
        variants={"AdamW": _adam_l2},
    ),
    Misconception(
        "no_bias_correction",
        "no bias correction",
        "m and v start at zero and are biased towards it: divide by 1 - beta1**t and 1 - beta2**t",
        readme="2.4 — AdamW",
        variants={"AdamW": _no_bias_correction},
    ),
    Misconception(
        "no_zero_grad",
        "gradients never cleared between steps",
        "loss.backward() adds into .grad: clear it (optimizer.zero_grad()) before every backward",
        readme="2.4 — Training: warm-up, cosine decay and the loop",
        variants={"train": _training(zero_grad=False)},
    ),
    Misconception(
        "mask_built_in_python_loops",
        "the causal mask built with Python loops",
        "T * T Python assignments every forward: torch.ones(T, T, dtype=torch.bool).tril() is one call",
        readme="2.4 — Speed",
        kind="speed",
    ),
)


def check_one_call(impl, draw) -> None:
    """One small call of the learner's cross_entropy and RMSNorm, checked against torch's:
    the generated ban test (``test_no_library_shortcuts``) makes it after its static scan,
    with banned calls trapped."""
    logits, targets = draw.tensor(3, 5, 7, scale=3.0), draw.tensor(3, 5).abs().mul(3).long().clamp(max=6)
    assert_close(
        impl.cross_entropy(logits, targets), torch_cross_entropy(logits, targets), name="cross_entropy"
    )
    x = draw.tensor(4, 6)
    norm = impl.RMSNorm(6)
    assert_close(norm(x), nn.RMSNorm(6, eps=1e-5)(x), name="RMSNorm")


def figure(impl) -> Figure:
    """Your GPT trained by your ``train`` (and AdamW, and cross_entropy) on the order-2
    Markov source of the tests: the training loss against the entropy rate H, the floor
    no model can beat, and the validation loss reached."""
    seed = 0
    losses, val, entropy_rate, _ = train_on_markov(impl, seed)
    cfg = TRAINING
    fig, axes = new_figure(7.5, 4.0)
    ax = axes[0] if isinstance(axes, (list, tuple, np.ndarray)) else axes
    ax.plot(range(1, len(losses) + 1), losses, lw=1.2, label="training loss (per batch)")
    ax.axhline(entropy_rate, color="black", ls="--", lw=1, label=f"entropy rate H = {entropy_rate:.3f} nats")
    ax.axhline(
        entropy_rate + cfg.margin, color="tab:red", ls=":", lw=1, label=f"target: H + {cfg.margin} nats"
    )
    ax.axhline(math.log(cfg.vocab), color="gray", ls="-.", lw=1, label=f"uniform guess, log {cfg.vocab}")
    ax.scatter([len(losses)], [val], color="tab:green", zorder=5, label=f"validation loss {val:.3f}")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_ylim(entropy_rate - 0.2, max(math.log(cfg.vocab), max(losses[:5] or [0])) + 0.1)
    ax.legend(fontsize=8)
    caption = (
        f"Your GPT ({cfg.n_layers} layer, d={cfg.d}) trained by your train() for {cfg.steps} steps on an "
        f"order-2 Markov source over {cfg.vocab} tokens: validation loss {val:.3f} vs the floor H = "
        f"{entropy_rate:.3f} nats"
    )
    return png(fig), caption


def check_adamw(impl, setting, params, grads) -> None:
    """The learner's AdamW against torch's, step for step over ``grads``, diagnosed by mistake."""
    lr, betas, eps, wd = setting
    got = optimizer_trajectory(
        lambda ps: impl.AdamW(ps, lr=lr, betas=betas, eps=eps, weight_decay=wd), params, grads
    )
    check_trajectory(
        got,
        optimizer_trajectory(torch_adamw(lr, betas, eps, wd), params, grads),
        f"AdamW(lr={lr}, betas={betas}, eps={eps}, weight_decay={wd})",
        suspects=MISCONCEPTIONS.on("AdamW", params, grads, lr, betas, eps, wd),
    )
