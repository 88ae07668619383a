"""Hidden oracles for exercise 5.2's graders, written independently of the support
module's (which use F.cross_entropy and build the labels row by row from lists):

* :func:`packed` — input_ids and labels from ``torch.nn.utils.rnn.pad_sequence``;
* :func:`token_logprobs` — ``torch.distributions.Categorical(logits=...).log_prob`` on
  the shifted float64 logits, with the counted-label mask;
* :func:`sft_loss`, :func:`sequence_logprob` — their mean over the batch's counted labels
  and their sum per row;
* :func:`dpo` — the DPO loss and rewards pair by pair with Python's math in float64
  (softplus written in its stable form), and :func:`dpo_autograd_loss`, the same loss in
  torch for gradients.
"""

from __future__ import annotations

import math

import torch
from torch.nn.utils.rnn import pad_sequence


def _ids(seq) -> torch.Tensor:
    return torch.tensor([int(t) for t in seq], dtype=torch.long)


def packed(prompts, responses, ignore_index: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = [torch.cat([_ids(p), _ids(r)]) for p, r in zip(prompts, responses)]
    labels = [
        torch.cat([torch.full((len(_ids(p)),), ignore_index, dtype=torch.long), _ids(r)])
        for p, r in zip(prompts, responses)
    ]
    return (
        pad_sequence(ids, batch_first=True, padding_value=pad_id),
        pad_sequence(labels, batch_first=True, padding_value=ignore_index),
    )


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int):
    """(log p of labels[:, t + 1] under logits[:, t], counted mask), both (B, T - 1), float64."""
    targets = labels[:, 1:]
    counted = targets != ignore_index
    dist = torch.distributions.Categorical(logits=logits[:, :-1].to(torch.float64), validate_args=False)
    logp = dist.log_prob(torch.where(counted, targets, torch.zeros_like(targets)))
    return torch.where(counted, logp, torch.zeros_like(logp)), counted


def sft_loss(logits, labels, ignore_index: int) -> torch.Tensor:
    logp, counted = token_logprobs(logits, labels, ignore_index)
    return (-logp.sum() / counted.sum()).to(logits.dtype)


def sequence_logprob(logits, labels, ignore_index: int) -> torch.Tensor:
    logp, _ = token_logprobs(logits, labels, ignore_index)
    return logp.sum(dim=1).to(logits.dtype)


def _softplus(x: float) -> float:
    """log(1 + e^x), finite for any x."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def dpo(pc, pr, rc, rr, beta: float):
    """(loss, chosen rewards, rejected rewards) in the inputs' dtype, pair by pair in Python floats."""
    dtype = pc.dtype
    rows = list(zip(*(t.to(torch.float64).tolist() for t in (pc, pr, rc, rr))))
    chosen = [beta * (a - c) for a, _, c, _ in rows]
    rejected = [beta * (b - d) for _, b, _, d in rows]
    losses = [_softplus(-(c - r)) for c, r in zip(chosen, rejected)]
    return (
        torch.tensor(sum(losses) / len(losses), dtype=torch.float64).to(dtype),
        torch.tensor(chosen, dtype=torch.float64).to(dtype),
        torch.tensor(rejected, dtype=torch.float64).to(dtype),
    )


def dpo_autograd_loss(pc, pr, rc, rr, beta: float) -> torch.Tensor:
    """The loss in torch, for autograd: softplus(-z) as relu(-z) + log1p(exp(-|z|)), exact
    everywhere (F.softplus switches to the identity above its threshold, 20, which is
    off by up to e^-20 in the gradient)."""
    x = -beta * ((pc - rc.detach()) - (pr - rr.detach()))
    return (torch.relu(x) + torch.log1p(torch.exp(-x.abs()))).mean()
