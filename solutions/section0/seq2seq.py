"""Exercise 0.3 — seq2seq with additive (Bahdanau) attention: the reference solution.

Same API and conventions as the stub (exercises/section0/seq2seq.py).
"""

from __future__ import annotations

import torch
from torch import nn


def additive_attention(
    query: torch.Tensor,
    keys: torch.Tensor,
    mask: torch.Tensor | None,
    W_q: torch.Tensor,
    W_k: torch.Tensor,
    v: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    scores = torch.tanh((query @ W_q.T).unsqueeze(1) + keys @ W_k.T) @ v  # (B, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    context = (weights.unsqueeze(1) @ keys).squeeze(1)
    return context, weights


class Seq2Seq(nn.Module):
    def __init__(self, src_vocab: int, tgt_vocab: int, emb_dim: int, hidden: int):
        super().__init__()
        self.src_emb = nn.Embedding(src_vocab, emb_dim)
        self.tgt_emb = nn.Embedding(tgt_vocab, emb_dim)
        self.encoder = nn.GRU(emb_dim, hidden, batch_first=True)
        self.decoder = nn.GRUCell(emb_dim + hidden, hidden)
        bound = hidden**-0.5
        self.W_q = nn.Parameter(torch.empty(hidden, hidden).uniform_(-bound, bound))
        self.W_k = nn.Parameter(torch.empty(hidden, hidden).uniform_(-bound, bound))
        self.v = nn.Parameter(torch.empty(hidden).uniform_(-bound, bound))
        self.out = nn.Linear(2 * hidden, tgt_vocab)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder outputs (B, S, hidden) and the state after each row's last real token (B, hidden)."""
        lengths = src_mask.sum(dim=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.src_emb(src), lengths, batch_first=True, enforce_sorted=False
        )
        outputs, last = self.encoder(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=src.shape[1])
        return outputs, last[0]

    def step(self, y_prev, state, keys, src_mask):
        """One decoder step: attend with the previous state, update the state, predict."""
        context, weights = additive_attention(state, keys, src_mask, self.W_q, self.W_k, self.v)
        state = self.decoder(torch.cat([self.tgt_emb(y_prev), context], dim=-1), state)
        logits = self.out(torch.cat([state, context], dim=-1))
        return logits, state, weights

    def forward(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor,
        tgt_in: torch.Tensor,
        return_attention: bool = False,
    ):
        keys, state = self.encode(src, src_mask)
        all_logits, all_weights = [], []
        for t in range(tgt_in.shape[1]):
            logits, state, weights = self.step(tgt_in[:, t], state, keys, src_mask)
            all_logits.append(logits)
            all_weights.append(weights)
        logits = torch.stack(all_logits, dim=1)
        if return_attention:
            return logits, torch.stack(all_weights, dim=1)
        return logits

    @torch.no_grad()
    def greedy_decode(
        self, src: torch.Tensor, src_mask: torch.Tensor, max_len: int, bos: int, eos: int
    ) -> torch.Tensor:
        keys, state = self.encode(src, src_mask)
        y = torch.full((src.shape[0],), bos, dtype=torch.long, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        tokens = torch.full((src.shape[0], max_len), eos, dtype=torch.long, device=src.device)
        for t in range(max_len):
            logits, state, _ = self.step(y, state, keys, src_mask)
            y = logits.argmax(dim=-1).masked_fill(done, eos)
            tokens[:, t] = y
            done |= y == eos
            if done.all():
                break
        return tokens
