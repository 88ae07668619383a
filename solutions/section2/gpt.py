"""Exercise 2.4 — a GPT from your own parts (reference solution).

RMSNorm, a SwiGLU feed-forward, a pre-norm causal transformer block, a GPT with tied
embeddings, a stable cross-entropy, AdamW with decoupled weight decay, a warm-up +
cosine learning-rate schedule and the training loop that puts them together.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FallbackAttention(nn.Module):
    """Multi-head attention with exercise 2.3's constructor and forward signature, built on
    ``F.scaled_dot_product_attention``: what ``Block`` uses when it is given no attention
    class. Given complete; nothing to write here."""

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
    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


class SwiGLU(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(d, hidden, bias=False)
        self.w3 = nn.Linear(d, hidden, bias=False)
        self.w2 = nn.Linear(hidden, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, d: int, n_heads: int, hidden: int, attention=None):
        super().__init__()
        attention = FallbackAttention if attention is None else attention
        self.norm1 = RMSNorm(d)
        self.attn = attention(d, n_heads, bias=False)
        self.norm2 = RMSNorm(d)
        self.mlp = SwiGLU(d, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        x = x + self.attn(self.norm1(x), mask=causal)
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
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
        hidden = 4 * d if hidden is None else hidden
        self.context = context
        self.tok_emb = nn.Embedding(vocab_size, d)
        self.pos_emb = nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, n_heads, hidden, attention) for _ in range(n_layers))
        self.norm = RMSNorm(d)
        self.lm_head = nn.Linear(d, vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # tied: one (V, d) matrix reads and writes tokens
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.context:
            raise ValueError(f"sequence of {t} tokens is longer than the context ({self.context})")
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.norm(x))


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    logits = logits.reshape(-1, logits.shape[-1])
    targets = targets.reshape(-1)
    keep = targets != ignore_index
    shifted = logits - logits.amax(dim=-1, keepdim=True).detach()
    log_norm = shifted.exp().sum(dim=-1).log()
    picked = shifted.gather(1, targets.clamp(min=0).unsqueeze(1)).squeeze(1)
    losses = (log_norm - picked) * keep
    return losses.sum() / keep.sum()


class AdamW(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                p.mul_(1 - lr * wd)
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                m_hat = m / (1 - beta1**t)
                v_hat = v / (1 - beta2**t)
                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
        return loss


def lr_schedule(step: int, total_steps: int, max_lr: float, warmup_steps: int, min_lr: float = 0.0) -> float:
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * min(progress, 1.0)))


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
    optimizer = AdamW(model.parameters(), lr=max_lr, betas=betas, weight_decay=weight_decay)
    model.train()
    losses = []
    batches = iter(batches)
    for step in range(steps):
        inputs, targets = next(batches)
        for group in optimizer.param_groups:
            group["lr"] = lr_schedule(step, steps, max_lr, warmup_steps, min_lr)
        loss = cross_entropy(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
