"""Exercise 4.3 — knowledge distillation and magnitude pruning (reference solution).

Same API as exercises/section4/distill_prune.py; the docstrings there state every rule.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import torch
import torch.nn.functional as F

# --- distillation ---------------------------------------------------------------


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    T: float = 2.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    vocab = student_logits.shape[-1]
    student = student_logits.reshape(-1, vocab)
    teacher = teacher_logits.detach().reshape(-1, vocab)  # the teacher is a constant
    log_p_student = F.log_softmax(student / T, dim=-1)
    log_p_teacher = F.log_softmax(teacher / T, dim=-1)
    # KL(p_teacher || p_student), summed over the vocabulary, averaged over positions
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1).mean()
    ce = F.cross_entropy(student, labels.reshape(-1))  # the hard labels, at T = 1
    return alpha * T**2 * kl + (1 - alpha) * ce


# --- pruning --------------------------------------------------------------------


def _count(amount: int | float, n: int) -> int:
    """How many of ``n`` units to prune: ``amount`` itself (an int) or round(amount * n)."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"amount must be an int or a float, got {type(amount).__name__}")
    if isinstance(amount, numbers.Integral):
        if amount < 0:
            raise ValueError(f"amount={amount}: an int amount counts units to prune and must be >= 0")
        k = int(amount)
    else:
        if not 0.0 <= amount <= 1.0:
            raise ValueError(f"amount={amount}: a float amount is a fraction and must be in [0, 1]")
        k = round(amount * n)
    if k > n:
        raise ValueError(f"amount={amount} asks to prune {k} units, but there are only {n}")
    return k


def _smallest_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """A bool mask of 1-D ``scores``: False at the k smallest (ties: lower index first)."""
    keep = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    order = torch.argsort(scores, stable=True)
    keep[order[:k]] = False
    return keep


def magnitude_prune(W: torch.Tensor, amount: int | float) -> torch.Tensor:
    with torch.no_grad():
        k = _count(amount, W.numel())
        return _smallest_k_mask(W.abs().flatten(), k).reshape(W.shape)


def global_magnitude_prune(
    params: Mapping[str, torch.Tensor], amount: int | float
) -> dict[str, torch.Tensor]:
    names = list(params)
    if not names:
        _count(amount, 0)
        return {}
    with torch.no_grad():
        tensors = [params[name] for name in names]
        dtype = torch.promote_types(tensors[0].dtype, torch.float32)
        for t in tensors[1:]:
            dtype = torch.promote_types(dtype, t.dtype)
        scores = torch.cat([t.abs().flatten().to(dtype) for t in tensors])
        keep = _smallest_k_mask(scores, _count(amount, scores.numel()))
        masks, start = {}, 0
        for name, t in zip(names, tensors):
            masks[name] = keep[start : start + t.numel()].reshape(t.shape)
            start += t.numel()
        return masks


def structured_prune(W: torch.Tensor, amount: int | float, dim: int = 0) -> torch.Tensor:
    if W.dim() < 2:
        raise ValueError(
            f"structured pruning needs a tensor of 2 or more dimensions, got shape {tuple(W.shape)}"
        )
    axis = range(W.dim())[dim]  # IndexError for a dim out of range; negative dims count from the end
    with torch.no_grad():
        others = [d for d in range(W.dim()) if d != axis]
        norms = torch.linalg.vector_norm(W, ord=2, dim=others)  # one L2 norm per slice along `axis`
        keep = _smallest_k_mask(norms, _count(amount, W.shape[axis]))
        shape = [1] * W.dim()
        shape[axis] = W.shape[axis]
        return keep.reshape(shape).expand(W.shape).clone()
