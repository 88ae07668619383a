"""Exercise 6.1 — perplexity and calibration (reference solution).

Perplexity builds on F.cross_entropy (allowed); the exercise is the shift, the
masking, the token weighting and the window schedule. The calibration error bins
float32 confidences against float32 edges, as torchmetrics does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F


def _nll_sum_and_count(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> tuple[float, int]:
    """Summed negative log-likelihood (float64) of the labels that are not ignored, and their count."""
    vocab = logits.shape[-1]
    flat_logits = logits.reshape(-1, vocab).to(torch.float64)
    flat_labels = labels.reshape(-1)
    count = int((flat_labels != ignore_index).sum())
    if count == 0:
        return 0.0, 0
    total = F.cross_entropy(flat_logits, flat_labels, ignore_index=ignore_index, reduction="sum")
    return float(total), count


def perplexity(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> float:
    total, count = _nll_sum_and_count(logits[:, :-1], labels[:, 1:], ignore_index)
    return math.exp(total / count) if count else math.nan


def sliding_window_perplexity(
    model_fn: Callable[[torch.Tensor], torch.Tensor], ids: torch.Tensor, context: int, stride: int
) -> float:
    length = ids.shape[0]
    if length < 2:
        return math.nan
    total, count = 0.0, 0
    begin, scored_up_to = 0, 0  # tokens 1 .. scored_up_to are done
    while scored_up_to < length - 1:
        end = min(begin + context, length - 1)  # this window predicts tokens begin+1 .. end
        with torch.no_grad():
            logits = model_fn(ids[None, begin:end])[0]  # (end - begin, V)
        new = end - scored_up_to  # the last `new` predictions are tokens no window scored yet
        nll = F.cross_entropy(logits[-new:].to(torch.float64), ids[end - new + 1 : end + 1], reduction="sum")
        total += float(nll)
        count += new
        scored_up_to = end
        begin += stride
    return math.exp(total / count)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    confidences, predictions = probs.max(dim=1)
    confidences = confidences.to(torch.float32)
    correct = (predictions == labels).to(torch.float64)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float32)
    bins = (torch.bucketize(confidences, edges, right=True) - 1).clamp(max=n_bins - 1)
    counts = torch.bincount(bins, minlength=n_bins).to(torch.float64)
    conf_sums = torch.bincount(bins, weights=confidences.to(torch.float64), minlength=n_bins)
    correct_sums = torch.bincount(bins, weights=correct, minlength=n_bins)
    # sum over bins of (count / N) * |accuracy - confidence| = sum |correct_sum - conf_sum| / N
    return float((correct_sums - conf_sums).abs().sum() / counts.sum())
