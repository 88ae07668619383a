"""The graders' oracle for exercise 0.3: the whole attentive seq2seq model written out in
float64, from a state dict with the stub's names (it would solve the exercise, so it
never ships to learners).

The attention is the closed form of the stub's docstring; the recurrent steps are
``nn.GRUCell`` modules holding copies of the learner's weights (the encoder's
``nn.GRU`` weights included: a one-layer GRU is a GRUCell applied step by step), run
one source position at a time with the state held still past each row's last real
token. :class:`Wiring` switches each documented rule for the one a known mistake
follows, which is what the misconceptions' grader-side variants and the public tests'
pasted snapshots are made of.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Wiring:
    """The model's rules; every default is the documented one."""

    query: str = "previous"  # "current": attend with the state after this step's GRU update
    concat: str = "state_context"  # "context_state": out([c_t ; s_t])
    initial: str = "last_real"  # "after_padding": s_0 read after running over the padding too
    mask: str = "before_softmax"  # "after_softmax": weights * mask, not renormalised; "ignored"
    softmax_dim: int = -1  # 0: over the batch
    fill_after_eos: bool = True  # False: greedy decoding carries on past eos


def attention64(query, keys, mask, W_q, W_k, v, wiring: Wiring = Wiring()):
    """(context, weights) in float64: weights = softmax(v . tanh(W_q q + W_k k_j)) over the
    real source positions."""
    q, k = query.to(torch.float64), keys.to(torch.float64)
    W_q, W_k, v = W_q.to(torch.float64), W_k.to(torch.float64), v.to(torch.float64)
    scores = torch.tanh((q @ W_q.T)[:, None, :] + k @ W_k.T) @ v
    if mask is not None and wiring.mask == "before_softmax":
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=wiring.softmax_dim)
    if mask is not None and wiring.mask == "after_softmax":
        weights = weights * mask
    return torch.einsum("bs,bsh->bh", weights, k), weights


def attention(query, keys, mask, W_q, W_k, v, wiring: Wiring = Wiring()):
    """:func:`attention64` cast back to ``query``'s dtype."""
    context, weights = attention64(query, keys, mask, W_q, W_k, v, wiring)
    return context.to(query.dtype), weights.to(query.dtype)


def _cell(weight_ih, weight_hh, bias_ih, bias_hh) -> nn.GRUCell:
    hidden = weight_hh.shape[1]
    cell = nn.GRUCell(weight_ih.shape[1], hidden, dtype=torch.float64)
    with torch.no_grad():
        for p, w in zip((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh),
                        (weight_ih, weight_hh, bias_ih, bias_hh)):  # fmt: skip
            p.copy_(w.detach().to(torch.float64))
    return cell


class Oracle:
    """The model of the stub, in float64, from a state dict with the stub's names."""

    def __init__(self, state: dict[str, torch.Tensor], wiring: Wiring = Wiring()):
        sd = {name: t.detach().to(torch.float64) for name, t in state.items()}
        self.wiring = wiring
        self.encoder = _cell(
            *(sd[f"encoder.{p}_l0"] for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        )
        self.decoder = _cell(*(sd[f"decoder.{p}"] for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        own = {name: t.clone().requires_grad_(True) for name, t in sd.items()}
        self.src_emb, self.tgt_emb = own["src_emb.weight"], own["tgt_emb.weight"]
        self.W_q, self.W_k, self.v = own["W_q"], own["W_k"], own["v"]
        self.out_w, self.out_b = own["out.weight"], own["out.bias"]
        self.params = {name: own[name] for name in ("src_emb.weight", "tgt_emb.weight", "W_q", "W_k", "v")}
        self.params |= {"out.weight": self.out_w, "out.bias": self.out_b}
        for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            self.params[f"encoder.{p}_l0"] = getattr(self.encoder, p)
            self.params[f"decoder.{p}"] = getattr(self.decoder, p)

    def encode(self, src, src_mask):
        """Encoder outputs (zeros past each row's end, as ``pad_packed_sequence`` leaves them)
        and the initial decoder state."""
        state = torch.zeros(src.shape[0], self.v.shape[0], dtype=torch.float64)
        outputs = []
        for j in range(src.shape[1]):
            new = self.encoder(self.src_emb[src[:, j]], state)
            real = src_mask[:, j, None]
            outputs.append(torch.where(real, new, torch.zeros_like(new)))
            state = new if self.wiring.initial == "after_padding" else torch.where(real, new, state)
        return torch.stack(outputs, dim=1), state

    def _attend(self, state, keys, src_mask):
        return attention64(state, keys, src_mask, self.W_q, self.W_k, self.v, self.wiring)

    def step(self, y_prev, state, context, keys, src_mask):
        """One decoder step: (logits, new state, context, weights). ``context`` is only read
        under ``query="current"`` (the previous step's context, zeros at first)."""
        if self.wiring.query == "current":
            state = self.decoder(torch.cat([self.tgt_emb[y_prev], context], dim=-1), state)
            context, weights = self._attend(state, keys, src_mask)
        else:
            context, weights = self._attend(state, keys, src_mask)
            state = self.decoder(torch.cat([self.tgt_emb[y_prev], context], dim=-1), state)
        parts = [context, state] if self.wiring.concat == "context_state" else [state, context]
        logits = torch.cat(parts, dim=-1) @ self.out_w.T + self.out_b
        return logits, state, context, weights

    def forward(self, src, src_mask, tgt_in) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, T, V), attention weights (B, T, S)), float64, teacher forcing; both
        differentiable with respect to :attr:`params` (the weights by the stub's names)."""
        keys, state = self.encode(src, src_mask)
        context = torch.zeros_like(state)
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            out, state, context, w = self.step(tgt_in[:, t], state, context, keys, src_mask)
            logits.append(out)
            weights.append(w)
        return torch.stack(logits, dim=1), torch.stack(weights, dim=1)

    @torch.no_grad()
    def greedy(self, src, src_mask, max_len: int, bos: int, eos: int) -> torch.Tensor:
        """(B, max_len) int64: argmax fed back; after a row's first eos, eos (unless the
        wiring says otherwise)."""
        keys, state = self.encode(src, src_mask)
        context = torch.zeros_like(state)
        y = torch.full((src.shape[0],), bos, dtype=torch.long)
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        tokens = []
        for _ in range(max_len):
            logits, state, context, _ = self.step(y, state, context, keys, src_mask)
            y = logits.argmax(dim=-1)
            if self.wiring.fill_after_eos:
                y = y.masked_fill(done, eos)
            tokens.append(y)
            done = done | (y == eos)
        return torch.stack(tokens, dim=1)

    def gradients(self, src, src_mask, tgt_in, weights) -> dict[str, torch.Tensor]:
        """d sum(weights * logits) / d parameter, by the stub's parameter names."""
        logits, _ = self.forward(src, src_mask, tgt_in)
        names = list(self.params)
        grads = torch.autograd.grad(
            (logits * weights.to(torch.float64)).sum(), [self.params[n] for n in names]
        )
        return dict(zip(names, grads))
