"""Exercise 5.2 — fine-tuning objectives: SFT loss masking and DPO (reference solution).

Same API as exercises/section5/preference.py, whose docstrings state the conventions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _ids(seq) -> torch.Tensor:
    return torch.as_tensor(seq, dtype=torch.long).reshape(-1)


def sft_labels(
    prompt_ids: Sequence,
    response_ids: Sequence,
    ignore_index: int = -100,
    pad_id: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    if len(prompt_ids) != len(response_ids):
        raise ValueError(
            f"sft_labels: {len(prompt_ids)} prompts but {len(response_ids)} responses; they come in pairs"
        )
    rows = [(_ids(p), _ids(r)) for p, r in zip(prompt_ids, response_ids)]
    length = max((len(p) + len(r) for p, r in rows), default=0)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), length), ignore_index, dtype=torch.long)
    for b, (p, r) in enumerate(rows):
        start, end = len(p), len(p) + len(r)
        input_ids[b, :start] = p
        input_ids[b, start:end] = r
        labels[b, start:end] = r  # by position: a response token equal to pad_id still counts
    return input_ids, labels


def sft_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    vocab = logits.shape[-1]
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, vocab), labels[:, 1:].reshape(-1), ignore_index=ignore_index
    )


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    logp = logits[:, :-1].log_softmax(dim=-1)
    targets = labels[:, 1:]
    counted = targets != ignore_index
    picked = logp.gather(-1, torch.where(counted, targets, 0).unsqueeze(-1)).squeeze(-1)
    return torch.where(counted, picked, torch.zeros_like(picked)).sum(dim=-1)


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    chosen = beta * (policy_chosen - ref_chosen.detach())
    rejected = beta * (policy_rejected - ref_rejected.detach())
    loss = -F.logsigmoid(chosen - rejected).mean()
    return loss, chosen.detach(), rejected.detach()
