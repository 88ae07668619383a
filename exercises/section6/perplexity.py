"""Exercise 6.1 — perplexity and calibration.

Two numbers every language-model evaluation reports, and one way to compute the first
on text longer than the model can read:

* ``perplexity``: how surprised a model is by a text, on average per token;
* ``sliding_window_perplexity``: the same for a long text, read in overlapping windows;
* ``expected_calibration_error``: whether a classifier's confidence matches how often it is right.

Replace every ``raise NotImplementedError`` with your code, then run

    pytest exercises/section6/test_perplexity.py      (or: llmkit check 6.1)

Allowed: everything in torch, including ``F.cross_entropy`` / ``F.log_softmax`` (the
exercise is the shift, the masking, the averaging and the binning, not the log-softmax).
Banned (a static scan and a runtime trap enforce it): torchmetrics' versions of these
metrics, ``torchmetrics...perplexity`` / ``Perplexity`` and every ``calibration_error`` /
``CalibrationError`` of torchmetrics. The tests compare you with them.
"""

from __future__ import annotations

import math  # noqa: F401  (math.exp, math.nan)
from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: F401  (F.cross_entropy is allowed)


def perplexity(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> float:
    """The perplexity of ``labels`` under ``logits``: exp(mean negative log-likelihood).

    Shapes and dtypes:
        logits: (B, T, V) float32 or float64 — B sequences of T positions, V vocabulary scores.
        labels: (B, T) int64 — the token ids of the same sequences (as in Hugging Face,
                where ``labels`` is usually a copy of ``input_ids``).
        returns a Python float.

    Conventions (the tests hold you to them):
    * The shift: ``logits[b, t]`` is the model's prediction for the NEXT token, so it is
      scored against ``labels[b, t + 1]``. The last position's logits predict nothing, and
      ``labels[b, 0]`` is never predicted.
    * A label equal to ``ignore_index`` (padding, a prompt you do not score) does not
      count: it adds nothing to the sum and nothing to the count.
    * Token-weighted: ONE average over every counted token of the whole batch,
      sum of -log p(label) / number of counted labels, then exp. A sequence with 3
      counted tokens weighs 3, one with 300 weighs 300.
    * Natural log and exp (cross-entropy is in nats). If no label counts, return
      ``math.nan`` (0 / 0).

    Example: with B = 1, T = 3 and labels [5, 7, 2], the logits at positions 0 and 1
    are scored against tokens 7 and 2: perplexity = exp((-log p0(7) - log p1(2)) / 2).
    """
    raise NotImplementedError


def sliding_window_perplexity(
    model_fn: Callable[[torch.Tensor], torch.Tensor], ids: torch.Tensor, context: int, stride: int
) -> float:
    """Perplexity of a long text under a model that reads at most ``context`` tokens at once.

    Arguments:
        model_fn: call it as ``model_fn(window)`` with ``window`` an int64 tensor of shape
                  (1, n), 1 <= n <= context; it returns logits (1, n, V), where
                  ``logits[0, j]`` predicts the token that follows ``window[0, j]``.
                  (The tests pass a small ``nn.Module``; it raises if n > context.)
        ids:      (L,) int64, the whole text, L >= 2.
        context:  the most tokens the model may read at once.
        stride:   how far each window starts after the previous one, 1 <= stride <= context.
        returns a Python float: exp(total negative log-likelihood / (L - 1)).

    The windows: window k starts at b = k * stride and reads
    ``ids[b : min(b + context, L - 1)]`` (it never needs the last token as input: nothing
    comes after it to predict). Its logits predict the tokens b + 1 onwards. Score, in
    each window, ONLY the tokens that no earlier window has scored, and stop after the
    window that scores the last token ``ids[L - 1]``. So every token 1 .. L-1 is scored
    exactly once, with up to ``context`` tokens of history; token 0 is never scored.
    Example, L = 10, context = 4, stride = 2:

        token:           0 1 2 3 4 5 6 7 8 9
        window 0 reads   0 1 2 3               scores 1 2 3 4  (from 1, 2, 3, 4 tokens of history)
        window 1 reads       2 3 4 5           scores 5 6      (from 3, 4)
        window 2 reads           4 5 6 7       scores 7 8      (from 3, 4)
        window 3 reads               6 7 8     scores 9        (from 3)

    ``stride == context`` gives non-overlapping windows (fast, little history for the
    first tokens of each); ``stride == 1`` gives every token the full context (slow).
    Wrap the model calls in ``torch.no_grad()``: nothing here needs gradients.
    """
    raise NotImplementedError


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """Top-label expected calibration error (ECE) with ``n_bins`` equal-width bins.

    Shapes and dtypes:
        probs:  (N, C) float32 or float64, each row a probability distribution over C classes.
        labels: (N,) int64 in 0 .. C-1, the true classes.
        returns a Python float in [0, 1].

    Steps:
    1. Per row, the confidence is the highest probability and the prediction is its class
       (``probs.max(dim=1)``; on a tie, the first such class, as ``argmax`` picks it).
       The row is correct (1) when the prediction equals the label, else 0.
    2. Bin the confidences. The edges are ``torch.linspace(0, 1, n_bins + 1)`` in
       float32, and the confidences are compared in float32 too (as torchmetrics does;
       the tests put confidences exactly on these edges). Bin i holds the confidences
       with ``edges[i] <= conf < edges[i + 1]``: a confidence ON an edge goes to the bin
       ABOVE it. The one exception: a confidence of exactly 1.0 counts in the last bin.
    3. ECE = sum over the non-empty bins of (count_i / N) * |accuracy_i - confidence_i|,
       with accuracy_i the mean correctness and confidence_i the mean confidence of bin i.
       Each bin weighs by how many predictions it holds; empty bins add nothing.

    Libraries disagree on the edges: torchmetrics' bins are [lower, upper) (the
    convention here), scikit-learn's ``calibration_curve`` and Guo et al. (2017) put an
    edge in the bin below, (lower, upper]. (torchmetrics, as of 1.9, gives a confidence of
    1.0 an extra bin of its own; here it joins the last bin.)
    """
    raise NotImplementedError
