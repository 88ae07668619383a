"""Exercise 2.4 — a GPT from your own parts.

You build a small Llama-style GPT and everything needed to train it:

* ``RMSNorm`` and ``SwiGLU``: the normalisation and the feed-forward of modern LLMs;
* ``Block``: pre-norm, causal self-attention and a SwiGLU, each inside a residual;
* ``GPT``: token + position embeddings, a stack of blocks, a final RMSNorm and an
  output layer tied to the token embedding;
* ``cross_entropy``: the language-modelling loss, stable at any logit size;
* ``AdamW``: Adam with decoupled weight decay, a ``torch.optim.Optimizer``;
* ``lr_schedule`` and ``train``: linear warm-up then cosine decay, and the training loop.

Replace every ``raise NotImplementedError`` (``FallbackAttention`` is given complete),
then run

    pytest exercises/section2/test_gpt.py      (or: llmkit check 2.4)

Attention: ``Block`` takes an attention CLASS with exercise 2.3's constructor and
forward signature, e.g. your own ``MultiHeadAttention``::

    from llmkit.impl import load_exercise_module
    mine = load_exercise_module("2.3").MultiHeadAttention
    model = GPT(vocab_size, d, n_layers, n_heads, context, attention=mine)

With ``attention=None`` it uses ``FallbackAttention`` below (torch's attention behind the
same interface). The graders grade 2.4 with the fallback, so a bug in your 2.3 does not
cost points twice; a public test checks that your 2.3 gives the same block (and says so
when 2.3 is not done yet).

Banned here (a static scan and a runtime trap enforce it): the library versions of what
you write — ``nn.RMSNorm`` / ``F.rms_norm``, ``F.cross_entropy``, ``F.nll_loss``, every
log-softmax and logsumexp (``F.log_softmax``, ``torch.log_softmax``,
``Tensor.log_softmax``, ``torch.logsumexp``, ...), ``torch.optim.AdamW`` and
``torch.optim.Adam``. Everything else in torch (nn.Linear, nn.Embedding, F.silu, exp,
log, gather, ...) is fine, and so is ``F.scaled_dot_product_attention`` inside the
given ``FallbackAttention``.
"""

from __future__ import annotations

import math  # noqa: F401  (math.cos and math.pi for the schedule)

import torch
import torch.nn.functional as F
from torch import nn


class FallbackAttention(nn.Module):
    """Multi-head attention with exercise 2.3's constructor and forward signature, built on
    ``F.scaled_dot_product_attention``: what ``Block`` uses when it is given no attention
    class. Given complete; nothing to write here.

    Attributes: ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` (``nn.Linear(d_model,
    d_model, bias=bias)``), as in 2.3. ``forward(query, key=None, value=None, mask=None,
    is_causal=False)``: mask bool, True = may attend; a query that may see no key gets
    zeros (2.3's convention).
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, query, key=None, value=None, mask=None, is_causal=False):
        key = query if key is None else key
        value = key if value is None else value
        b, lq, d = query.shape
        lk, h = key.shape[1], self.n_heads

        def heads(x, length):
            return x.view(b, length, h, d // h).transpose(1, 2)

        q, k, v = heads(self.q_proj(query), lq), heads(self.k_proj(key), lk), heads(self.v_proj(value), lk)
        allowed = None
        if is_causal:
            allowed = torch.ones(lq, lk, dtype=torch.bool, device=query.device).tril()
        if mask is not None:
            allowed = mask if allowed is None else allowed & mask
        if allowed is None:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            allowed = allowed.expand(b, h, lq, lk)
            dead = ~allowed.any(dim=-1, keepdim=True)  # a query that may see no key gets zeros
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed | dead).masked_fill(dead, 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(b, lq, d))


class RMSNorm(nn.Module):
    """Root-mean-square normalisation, equal to ``nn.RMSNorm(d, eps=eps)``.

    ``weight``: ``nn.Parameter`` of shape (d,), initialised to ones.
    ``forward(x (..., d))`` returns ``x / sqrt(mean(x**2 over the last dim) + eps) * weight``,
    same shape and dtype. No mean is subtracted (that is LayerNorm) and eps goes INSIDE
    the square root.
    """

    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class SwiGLU(nn.Module):
    """The gated feed-forward of Llama: ``w2(silu(w1(x)) * w3(x))``.

    Attributes (names matter: the tests load weights into them):
        w1: ``nn.Linear(d, hidden, bias=False)``, its output goes through silu (the gate);
        w3: ``nn.Linear(d, hidden, bias=False)``, the linear branch it multiplies;
        w2: ``nn.Linear(hidden, d, bias=False)``, back to d.
    ``forward(x (..., d)) -> (..., d)``. ``F.silu`` is allowed.
    """

    def __init__(self, d: int, hidden: int):
        super().__init__()
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Block(nn.Module):
    """One pre-norm transformer block with causal self-attention.

    Attributes (names matter):
        norm1: ``RMSNorm(d)``;  attn: ``attention(d, n_heads, bias=False)``;
        norm2: ``RMSNorm(d)``;  mlp: ``SwiGLU(d, hidden)``.
    ``attention`` is an attention class with 2.3's signature; None means
    ``FallbackAttention``.

    ``forward(x (B, T, d)) -> (B, T, d)``::

        x = x + attn(norm1(x), mask=causal)
        x = x + mlp(norm2(x))

    Build the causal mask yourself, a bool (T, T) tensor with True = may attend, and pass
    it as ``mask=`` (not ``is_causal``): position i sees positions 0..i, itself included.
    Pre-norm: the norms are on the branch inputs; the residual stream itself is never
    normalised inside a block.
    """

    def __init__(self, d: int, n_heads: int, hidden: int, attention=None):
        super().__init__()
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class GPT(nn.Module):
    """A decoder-only language model.

    Attributes (names matter):
        tok_emb: ``nn.Embedding(vocab_size, d)``;  pos_emb: ``nn.Embedding(context, d)``
        (learned absolute positions, as GPT-2);  blocks: ``nn.ModuleList`` of n_layers
        ``Block(d, n_heads, hidden, attention)``;  norm: ``RMSNorm(d)``;
        lm_head: ``nn.Linear(d, vocab_size, bias=False)``.
    ``hidden`` defaults to ``4 * d``.

    Tied embeddings (this exercise's choice, as GPT-2): ``lm_head.weight`` IS
    ``tok_emb.weight`` (assign the Parameter, ``self.lm_head.weight = self.tok_emb.weight``),
    so one (V, d) matrix both reads tokens in and scores them out, and the model has
    V * d fewer parameters.

    Initialisation: every ``nn.Linear`` and ``nn.Embedding`` weight ~ normal(0, 0.02), as
    GPT-2 (torch's defaults give the tied embedding N(0, 1) entries and logits far too
    large for training to start well). RMSNorm weights stay at ones.

    ``forward(idx (B, T) int64, T <= context) -> logits (B, T, vocab_size)``, float32:
    ``x = tok_emb(idx) + pos_emb(arange(T))``, the blocks, ``norm``, ``lm_head``. The
    logits at position t may depend only on tokens 0..t.
    """

    def __init__(
        self,
        vocab_size: int,
        d: int,
        n_layers: int,
        n_heads: int,
        context: int,
        hidden: int | None = None,
        attention=None,
    ):
        super().__init__()
        raise NotImplementedError

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean negative log-likelihood of ``targets`` under ``softmax(logits)``, equal to
    ``F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=ignore_index)``.

    logits: (..., V) float;  targets: (...) int64 class ids, or ``ignore_index`` for
    positions that do not count (padding). Returns a 0-d tensor of logits' dtype: the mean
    over the targets that count (not over all positions).

    Stable: logits of 1000 or -1000 must give the right finite loss. Compute
    ``log(sum(exp(logits)))`` with the maximum subtracted first. Gradients flow to logits.
    """
    raise NotImplementedError


class AdamW(torch.optim.Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), step for step equal to
    ``torch.optim.AdamW(params, lr, betas, eps, weight_decay)``.

    Per parameter p with gradient g, at step t = 1, 2, ...::

        p <- p * (1 - lr * weight_decay)          # decoupled: NOT added to g
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t);  v_hat = v / (1 - beta2**t)   # bias correction
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)

    Call ``super().__init__(params, defaults)`` with a dict of the hyper-parameters, keep
    m, v and t per parameter in ``self.state[p]``, read lr etc. from each of
    ``self.param_groups`` at every step (``train`` changes ``group["lr"]``), skip
    parameters whose ``.grad`` is None, and update in place under ``torch.no_grad()``.
    ``step(closure=None)`` returns the closure's loss (None without one).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        raise NotImplementedError

    def step(self, closure=None):
        raise NotImplementedError


def lr_schedule(step: int, total_steps: int, max_lr: float, warmup_steps: int, min_lr: float = 0.0) -> float:
    """The learning rate at ``step`` (0-based): linear warm-up, then cosine decay.

    * ``step < warmup_steps``: ``max_lr * (step + 1) / warmup_steps`` (the first step
      already moves; the last warm-up step reaches max_lr);
    * after: with ``progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)``
      (capped at 1), ``min_lr + 0.5 * (max_lr - min_lr) * (1 + cos(pi * progress))``:
      max_lr at the end of warm-up, min_lr at ``total_steps``.
    Returns a Python float.
    """
    raise NotImplementedError


def train(
    model: nn.Module,
    batches,
    steps: int,
    *,
    max_lr: float = 3e-3,
    warmup_steps: int = 20,
    min_lr: float = 3e-4,
    weight_decay: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.95),
) -> list[float]:
    """Train ``model`` for ``steps`` steps; return the training loss of every step.

    * ``batches``: an iterable of ``(inputs, targets)`` pairs of int64 tensors (B, T)
      (targets are the inputs shifted by one); use one pair per step, in order.
    * One ``AdamW(model.parameters(), lr=max_lr, betas=betas, weight_decay=weight_decay)``
      (eps at its default) for the whole run; before step s set every param group's
      ``"lr"`` to ``lr_schedule(s, steps, max_lr, warmup_steps, min_lr)``.
    * Each step: ``loss = cross_entropy(model(inputs), targets)``, clear the old gradients,
      ``loss.backward()``, ``optimizer.step()``; record ``loss.item()`` (the loss before
      that step's update). Put the model in training mode first.
    """
    raise NotImplementedError
