"""Support for exercise 6.1 (perplexity and calibration): what its public tests, graders,
notebook and `llmkit show` share. It ships to learners, so nothing here solves the
exercise: the oracles are torchmetrics' own metrics, called under the exercise's
conventions, and the misconceptions' variants are the same library calls with the
mistake's arguments.

* :func:`perplexity_oracle` — torchmetrics' ``perplexity`` (which does not shift: the
  caller pairs predictions and targets) on float64 logits, with the shift of the
  exercise's convention.
* :func:`calibration_oracle` — torchmetrics' ``multiclass_calibration_error`` (L1, top
  label, equal-width bins ``[lower, upper)``). torchmetrics (1.9, the version checked)
  counts a confidence of exactly 1.0 in an extra bin of its own (an open issue,
  Lightning-AI/torchmetrics#3510); the exercise counts it in the last bin, so the oracle
  moves such confidences one float32 step below 1.0 first, which puts them in the last
  bin whether or not a later torchmetrics fixes that.
* :func:`perplexity_case`, :func:`ece_case` and :func:`sliding_case` — the hypothesis
  strategies the public tests and the graders both draw from, and their inputs.
* :func:`tiny_lm` — seeded toy language models (:class:`~llmkit.toymodels.TinyTransformer`,
  which a sandboxed worker rebuilds from the engine: a model from this file could not
  travel there): a small transformer, a bigram model (no position, no attention) and a
  positional model (its prediction depends only on the position in the window).
* :data:`MISCONCEPTIONS`, :func:`check_one_call` and :func:`figure`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import strategies as st

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    CheckFailure,
    Draw,
    Misconception,
    Misconceptions,
    assert_close,
)
from llmkit.toymodels import TinyTransformer

IGNORE_INDEX = -100

# --- perplexity: torchmetrics' metric under the exercise's convention ------------------


def _tm_perplexity(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int) -> float:
    """torchmetrics' perplexity of already paired ``logits`` (B, T, V) and ``targets`` (B, T),
    in float64. NaN when no target counts."""
    from torchmetrics.functional.text import perplexity as tm_perplexity

    if targets.numel() == 0 or not (targets != ignore_index).any():
        return math.nan
    return float(tm_perplexity(logits.to(torch.float64), targets.long(), ignore_index=ignore_index))


def perplexity_oracle(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> float:
    """The perplexity the exercise asks for: logits at position t predict label t + 1,
    labels equal to ``ignore_index`` do not count, one average over all counted tokens."""
    return _tm_perplexity(logits[:, :-1], labels[:, 1:], ignore_index)


def perplexity_of_predictions(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The perplexity of ``targets`` (n,) under ``logits`` (n, V) already paired with them."""
    return _tm_perplexity(logits[None], targets[None], IGNORE_INDEX)


def counted_targets(labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> int:
    """How many labels the perplexity averages over (labels 1 .. T-1 not ignored)."""
    return int((labels[:, 1:] != ignore_index).sum())


@st.composite
def perplexity_case(draw_st, min_batch: int = 2, max_batch: int = 4, max_len: int = 10):
    """A batch of sequences: (B, T, V, dtype, ignore_index, lengths, scale, seed).

    ``lengths[b]`` is how many real tokens sequence b has (at least 2); the labels after
    them are padding (``ignore_index``). With ``min_batch`` >= 2 the first sequence
    is always padded and the second never, so every batch mixes lengths."""
    b = draw_st(st.integers(min_batch, max_batch), label="B")
    t = draw_st(st.integers(3, max_len), label="T")
    v = draw_st(st.integers(2, 12), label="V")
    lengths = [draw_st(st.integers(2, t), label=f"length {i}") for i in range(b)]
    if b >= 2:
        lengths[0], lengths[1] = min(lengths[0], t - 1), t
    ignore_index = draw_st(st.sampled_from([IGNORE_INDEX, -1, 0]), label="ignore_index")
    scale = draw_st(st.sampled_from([1.0, 3.0]), label="logit scale")
    return b, t, v, draw_st(FLOAT_DTYPES, label="dtype"), ignore_index, tuple(lengths), scale, draw_st(SEEDS)


def perplexity_inputs(case) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(logits, labels, ignore_index)`` for a :func:`perplexity_case`. With ignore_index 0
    (a pad id that is also a token id) the real labels are drawn from 1 .. V-1."""
    b, t, v, dtype, ignore_index, lengths, scale, seed = case
    rng = Draw(seed)
    logits = rng.tensor(b, t, v, dtype=dtype, scale=scale)
    low = 1 if ignore_index == 0 and v > 1 else 0
    labels = torch.as_tensor(rng.integers(low, v, size=(b, t)), dtype=torch.long)
    for row, length in enumerate(lengths):
        labels[row, length:] = ignore_index
    return logits, labels, ignore_index


def describe_perplexity_case(logits, labels, ignore_index) -> str:
    lengths = (labels != ignore_index).sum(dim=1).tolist()
    return (
        f"perplexity(logits {tuple(logits.shape)} {str(logits.dtype).removeprefix('torch.')}, labels "
        f"{tuple(labels.shape)} with {lengths} labels per sequence that are not {ignore_index}, "
        f"ignore_index={ignore_index})"
    )


# --- sliding windows: toy models and cases ---------------------------------------------

VOCAB = 23


def tiny_lm(seed: int, context: int, kind: str = "transformer", vocab: int = VOCAB) -> TinyTransformer:
    """A seeded toy language model that takes at most ``context`` tokens: called on ids
    (1, n), n <= context, it returns logits (1, n, vocab); longer inputs raise IndexError.

    ``kind``: "transformer" (two layers of causal attention: every prediction depends on
    the whole history), "bigram" (no attention, no positions: the logits at a position
    depend on that token only), "positional" (no attention, no token embedding: the
    logits depend only on the position in the window)."""
    layers = 2 if kind == "transformer" else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyTransformer(vocab=vocab, d_model=16, n_heads=2, n_layers=layers, d_ff=32, context=context)
        with torch.no_grad():
            model.lm_head.weight.mul_(2.0)  # sharper predictions: mistakes move the perplexity more
            if kind == "bigram":
                model.pos.weight.zero_()
            elif kind == "positional":
                model.embed.weight.zero_()
            elif kind != "transformer":
                raise ValueError(f"unknown toy model kind {kind!r}")
    return model.eval()


def model_logits(model, ids: torch.Tensor) -> torch.Tensor:
    """``model`` on the 1-D ``ids`` as a batch of one, without autograd: logits (n, V)."""
    with torch.no_grad():
        return model(ids[None])[0]


@st.composite
def sliding_case(draw_st, max_len: int = 40, max_context: int = 12):
    """(L, context, stride, seed) with 2 <= L, 1 <= stride <= context."""
    length = draw_st(st.integers(2, max_len), label="L")
    context = draw_st(st.integers(1, max_context), label="context")
    stride = draw_st(st.integers(1, context), label="stride")
    return length, context, stride, draw_st(SEEDS)


def token_ids(length: int, seed: int, vocab: int = VOCAB) -> torch.Tensor:
    """A seeded 1-D LongTensor of ``length`` token ids."""
    return torch.as_tensor(Draw(seed).integers(0, vocab, size=length), dtype=torch.long)


def whole_sequence_perplexity(model, ids: torch.Tensor, context: int) -> float:
    """The perplexity of ``ids`` under a model whose predictions ignore the history (the
    bigram model): any window gives the same logits, so the chunks' logits are the
    whole sequence's."""
    chunks = [model_logits(model, ids[s : s + context]) for s in range(0, len(ids), context)]
    logits = torch.cat(chunks)
    return perplexity_oracle(logits[None], ids[None])


# How many tokens of history each token 1 .. L-1 is predicted from, for a few
# (L, context, stride): worked out by hand from the docstring's rule (README, "6.1 —
# Sliding windows score each token once"). With the positional model, the prediction
# for a token with h tokens of history is the logits row at window position h - 1.
HISTORIES = {
    (10, 4, 2): [1, 2, 3, 4, 3, 4, 3, 4, 3],
    (9, 3, 3): [1, 2, 3, 1, 2, 3, 1, 2],
    (8, 5, 1): [1, 2, 3, 4, 5, 5, 5],
    (6, 8, 4): [1, 2, 3, 4, 5],
    (7, 1, 1): [1, 1, 1, 1, 1, 1],
}


def positional_perplexity(model, ids: torch.Tensor, histories: list[int], context: int) -> float:
    """The perplexity of ``ids`` under the positional model when token i is predicted
    from ``histories[i - 1]`` tokens."""
    table = model_logits(model, torch.zeros(context, dtype=torch.long))  # row j: window position j
    rows = table[torch.as_tensor(histories) - 1]
    return _tm_perplexity(rows[None], ids[None, 1:], IGNORE_INDEX)


# --- calibration: torchmetrics' top-label calibration error ----------------------------


def top_label(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidence, correct) per row in float32, as torchmetrics takes them: the highest
    probability, and 1.0 where the first class that has it is the label."""
    values, predicted = probs.max(dim=1)
    return values.to(torch.float32), (predicted == labels).to(torch.float32)


_BELOW_ONE = float(np.nextafter(np.float32(1.0), np.float32(0.0)))


def calibration_oracle(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """torchmetrics' multiclass_calibration_error (norm L1), with a confidence of exactly
    1.0 counted in the last bin (see the module docstring)."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    p = probs.to(torch.float32).clone()
    values, where = p.max(dim=1)
    certain = values == 1.0
    p[certain.nonzero()[:, 0], where[certain]] = _BELOW_ONE
    error = multiclass_calibration_error(
        p, labels.long(), num_classes=p.shape[1], n_bins=n_bins, norm="l1", validate_args=False
    )
    return float(error)


@st.composite
def ece_case(draw_st, min_n: int = 1, max_n: int = 150, min_bins: int = 1, max_bins: int = 20):
    """(N, C, n_bins, dtype, sharpness, seed): N predictions over C classes."""
    n = draw_st(st.integers(min_n, max_n), label="N")
    c = draw_st(st.integers(2, 8), label="C")
    n_bins = draw_st(st.integers(min_bins, max_bins), label="n_bins")
    sharpness = draw_st(st.sampled_from([0.5, 2.0, 6.0]), label="logit scale")
    return n, c, n_bins, draw_st(FLOAT_DTYPES, label="dtype"), sharpness, draw_st(SEEDS)


def ece_inputs(case) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(probs, labels, n_bins)`` for an :func:`ece_case`: softmax of random logits, and
    labels drawn from a sharper copy of them (so the model is overconfident or not)."""
    n, c, n_bins, dtype, sharpness, seed = case
    rng = Draw(seed)
    logits = rng.tensor(n, c, dtype=torch.float64, scale=sharpness)
    probs = torch.softmax(logits, dim=1).to(dtype)
    labels = sample_labels(torch.softmax(1.5 * logits, dim=1), rng)
    return probs, labels, n_bins


def sample_labels(probs: torch.Tensor, rng: Draw) -> torch.Tensor:
    """One class per row of ``probs``, drawn with those probabilities (inverse CDF)."""
    cdf = probs.to(torch.float64).cumsum(dim=1)
    u = torch.as_tensor(rng.rng.random(len(probs)), dtype=torch.float64)[:, None] * cdf[:, -1:]
    return (cdf <= u).sum(dim=1).clamp(max=probs.shape[1] - 1)


def describe_ece_case(probs, labels, n_bins) -> str:
    return (
        f"expected_calibration_error(probs {tuple(probs.shape)} "
        f"{str(probs.dtype).removeprefix('torch.')}, labels ({len(labels)},), n_bins={n_bins})"
    )


def edge_probs(confidences: list[float], n_classes: int, labels_right: list[bool], seed: int = 0):
    """Rows of ``n_classes`` float32 probabilities whose highest is exactly each confidence
    (the rest of the mass spread below it), and labels that are right where asked.
    Confidences must be >= 1 / n_classes."""
    gen = torch.Generator().manual_seed(seed)
    rows, labels = [], []
    for conf, right in zip(confidences, labels_right):
        top = int(torch.randint(n_classes, (1,), generator=gen))
        rest = torch.full((n_classes - 1,), (1.0 - conf) / (n_classes - 1), dtype=torch.float64)
        row = torch.cat([rest[:top], torch.tensor([conf], dtype=torch.float64), rest[top:]])
        rows.append(row.to(torch.float32))
        first_max = int(rows[-1].argmax())  # a uniform row's top is class 0
        wrong = (first_max + 1 + int(torch.randint(n_classes - 1, (1,), generator=gen))) % n_classes
        labels.append(first_max if right else wrong)
    probs = torch.stack(rows)
    probs[torch.arange(len(rows)), probs.argmax(dim=1)] = torch.tensor(confidences, dtype=torch.float32)
    return probs, torch.tensor(labels, dtype=torch.long)


# --- misconceptions: what each known mistake returns, from the same library calls ------


def _float64(variant):
    """The variant's float as a float64 tensor, the form the tests compare in."""

    def as_tensor(*args, **kwargs):
        return torch.tensor(variant(*args, **kwargs), dtype=torch.float64)

    return as_tensor


def _no_shift(logits, labels, ignore_index=IGNORE_INDEX):
    return _tm_perplexity(logits, labels, ignore_index)


def _mean_of_sequence_perplexities(logits, labels, ignore_index=IGNORE_INDEX):
    per_sequence = [
        perplexity_oracle(logits[i : i + 1], labels[i : i + 1], ignore_index) for i in range(len(labels))
    ]
    return sum(per_sequence) / len(per_sequence)


def _log_base_2(logits, labels, ignore_index=IGNORE_INDEX):
    return 2.0 ** math.log(perplexity_oracle(logits, labels, ignore_index))


def _padding_counted(logits, labels, ignore_index=IGNORE_INDEX):
    nats = math.log(perplexity_oracle(logits, labels, ignore_index))
    return math.exp(nats * counted_targets(labels, ignore_index) / labels[:, 1:].numel())


def _every_window_scores_all_its_tokens(model_fn, ids, context, stride):
    """Windows as the docstring places them, each scoring every token it predicts, so
    tokens in the overlaps count once per window that sees them."""
    total, count, begin = 0.0, 0, 0
    while True:
        end = min(begin + context, len(ids) - 1)  # the window's last predicted token
        logits = model_fn(ids[None, begin:end])
        n = end - begin
        total += math.log(_tm_perplexity(logits.detach(), ids[None, begin + 1 : end + 1], IGNORE_INDEX)) * n
        count += n
        if end == len(ids) - 1:
            return math.exp(total / count)
        begin += stride


def _ece_bins_closed_right(probs, labels, n_bins=15):
    """Bins (lower, upper]: mirrored (1 - confidence, 1 - correct), they are torchmetrics'
    [lower, upper) bins, with the same |accuracy - confidence| per bin (exact where the
    edges are, e.g. n_bins a power of two)."""
    from torchmetrics.functional.classification import binary_calibration_error

    conf, correct = top_label(probs, labels)
    return float(binary_calibration_error(1.0 - conf, (1.0 - correct).long(), n_bins=n_bins, norm="l1"))


def _ece_bins_weighted_equally(probs, labels, n_bins=15):
    """The mean of |accuracy - confidence| over the non-empty bins: scikit-learn's
    calibration_curve gives both per bin. Its bins are (lower, upper]; mirrored as above
    they are [lower, upper) with 1.0 in the last bin."""
    from sklearn.calibration import calibration_curve

    conf, correct = top_label(probs, labels)
    mirrored_acc, mirrored_conf = calibration_curve(
        (1.0 - correct).numpy(), (1.0 - conf).to(torch.float64).numpy(), n_bins=n_bins
    )
    return float(np.mean(np.abs(mirrored_acc - mirrored_conf)))


MISCONCEPTIONS = Misconceptions(
    "exercises/section6/README.md",
    Misconception(
        "no_shift",
        "logits compared with the label at the same position",
        "the logits at position t predict the NEXT token: pair logits[:, :-1] with labels[:, 1:]",
        readme="6.1 — The shift: position t predicts token t + 1",
        variants={"perplexity": _float64(_no_shift)},
    ),
    Misconception(
        "mean_of_sequence_perplexities",
        "the mean of per-sequence perplexities",
        "perplexity is exp of ONE average over all counted tokens of the batch: a short "
        "sequence weighs as much as its tokens, not as much as a long one",
        readme="6.1 — One average over tokens",
        variants={"perplexity": _float64(_mean_of_sequence_perplexities)},
    ),
    Misconception(
        "padding_counted",
        "ignored labels counted in the average",
        "divide the summed negative log-likelihood by the number of labels that are not "
        "ignore_index, not by every position",
        readme="6.1 — One average over tokens",
        variants={"perplexity": _float64(_padding_counted)},
    ),
    Misconception(
        "log_base_2",
        "log and exp in different bases",
        "cross-entropy is in nats (natural log), so perplexity is exp(mean NLL); 2 ** H needs H in bits",
        readme="6.1 — One base for the log and the exp",
        variants={"perplexity": _float64(_log_base_2)},
    ),
    Misconception(
        "overlap_counted_twice",
        "every window scores all of its tokens",
        "windows overlap by context - stride tokens: score only the tokens no earlier window scored",
        readme="6.1 — Sliding windows score each token once",
        variants={"sliding_window_perplexity": _float64(_every_window_scores_all_its_tokens)},
    ),
    Misconception(
        "bins_closed_right",
        "a confidence on an edge put in the bin below",
        "bins are [lower, upper) as in torchmetrics: a confidence equal to an edge belongs to "
        "the bin ABOVE it (only 1.0 stays in the last bin)",
        readme="6.1 — Which bin an edge belongs to",
        variants={"expected_calibration_error": _float64(_ece_bins_closed_right)},
    ),
    Misconception(
        "bins_weighted_equally",
        "bins averaged with equal weights",
        "weight each bin's |accuracy - confidence| by the share of predictions in it (count / N)",
        readme="6.1 — Weighting the bins by their counts",
        variants={"expected_calibration_error": _float64(_ece_bins_weighted_equally)},
    ),
)


def as_number(value, name: str) -> float:
    """The learner's metric as a float: a Python number or a one-element tensor."""
    if isinstance(value, bool) or value is None:
        raise CheckFailure(f"{name}: expected a float, got {value!r}", hint="return a Python float")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)) and np.size(value) == 1:
        return float(value.item())
    raise CheckFailure(
        f"{name}: expected a float, got {type(value).__name__}", hint="return a Python float (float(x))"
    )


def check_metric(got, expected: float, *, name: str, rtol: float, atol: float, hint=None, suspects=None):
    """The learner's metric ``got`` equals ``expected`` within (rtol, atol), compared in
    float64 (NaN only where NaN is expected); ``suspects`` name the likely mistake."""
    assert_close(
        torch.tensor(as_number(got, name), dtype=torch.float64),
        torch.tensor(expected, dtype=torch.float64),
        name=name,
        rtol=rtol,
        atol=atol,
        hint=hint,
        suspects=suspects,
    )


def perplexity_rtol(dtype: torch.dtype) -> float:
    """float32 logits may be summed in float32; float64 ones leave only rounding."""
    return 1e-5 if dtype == torch.float32 else 1e-8


ECE_ATOL = 1e-5  # torchmetrics averages in float32


def check_one_call(impl, draw) -> None:
    """One small call of each metric, checked against torchmetrics: the generated ban test
    (``test_no_library_shortcuts``) makes it after its static scan, with the banned calls
    trapped, so a module that does nothing earns nothing there."""
    logits, labels, _ = perplexity_inputs((2, 5, 4, torch.float64, IGNORE_INDEX, (3, 5), 2.0, draw.seed))
    check_metric(
        impl.perplexity(logits, labels),
        perplexity_oracle(logits, labels),
        name="perplexity",
        rtol=1e-8,
        atol=0,
    )
    probs, targets, n_bins = ece_inputs((40, 3, 5, torch.float32, 2.0, draw.seed))
    check_metric(
        impl.expected_calibration_error(probs, targets, n_bins=n_bins),
        calibration_oracle(probs, targets, n_bins),
        name="expected calibration error",
        rtol=0,
        atol=ECE_ATOL,
    )


# --- the figure ------------------------------------------------------------------------


class CopyModel:
    """A model for text that repeats every ``period`` tokens: it predicts the token
    ``period`` positions back when its window reaches that far, else it knows nothing."""

    def __init__(self, period: int, vocab: int, confidence: float = 6.0):
        self.period, self.vocab, self.confidence = period, vocab, confidence
        self.calls = 0

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        n = ids.shape[1]
        logits = torch.zeros(1, n, self.vocab)
        positions = torch.arange(self.period - 1, max(n, self.period - 1))  # they see the copy source
        logits[0, positions, ids[0, positions + 1 - self.period]] = self.confidence
        return logits


def figure(impl) -> Figure:
    """Left: ``impl.sliding_window_perplexity`` of a copy model on text that repeats every
    10 tokens, for each stride, at two context sizes. Right: ``impl.expected_calibration_error``
    and ``impl.perplexity`` of a classifier whose labels are drawn from its own softmax,
    as temperature scaling sharpens or flattens its probabilities."""
    period, vocab = 10, 20
    base = torch.as_tensor(Draw(5).integers(0, vocab, size=period), dtype=torch.long)
    ids = base.repeat(30)
    curves = []
    for context in (12, 24):
        strides = list(range(1, context + 1))
        values, calls = [], []
        for stride in strides:
            model = CopyModel(period, vocab)
            values.append(float(impl.sliding_window_perplexity(model, ids, context, stride)))
            calls.append(model.calls)
        curves.append((context, strides, values, calls))

    rng = Draw(11)
    logits = rng.tensor(3000, 6, dtype=torch.float64, scale=2.0)
    labels = sample_labels(torch.softmax(logits, dim=1), rng)
    temperatures = np.geomspace(0.4, 2.5, 19)
    eces, ppls = [], []
    for temp in temperatures:
        scaled = logits / temp
        eces.append(float(impl.expected_calibration_error(torch.softmax(scaled, dim=1), labels, n_bins=15)))
        # perplexity() pairs logits[t] with labels[t + 1]: put a dummy step in front of the labels
        seq_logits = torch.cat([scaled, torch.zeros(1, 6, dtype=torch.float64)])[None]
        seq_labels = torch.cat([torch.tensor([IGNORE_INDEX]), labels])[None]
        ppls.append(float(impl.perplexity(seq_logits, seq_labels)))

    fig, (left, right) = new_figure(11.0, 3.9, ncols=2)
    for (context, strides, values, calls), colour in zip(curves, ("#1a73e8", "#b3261e")):
        label = f"context {context} ({calls[0]} → {calls[-1]} model calls)"
        left.plot(strides, values, "o-", color=colour, ms=3.5, lw=1.6, label=label)
    left.axhline(1.0, color="#5f6368", ls=":", lw=1.0)
    left.set_xlabel("stride (1: every token gets the full context as history)")
    left.set_ylabel("perplexity (your sliding_window_perplexity)")
    left.set_title(
        f"Text that repeats every {period} tokens; the model copies\n"
        f"the token {period} back when its window holds it",
        fontsize=10,
    )
    left.legend(fontsize=8, loc="upper right")

    right.plot(
        temperatures,
        eces,
        "o-",
        color="#1a73e8",
        ms=3.5,
        lw=1.6,
        label="ECE (your expected_calibration_error)",
    )
    right.set_xscale("log")
    right.set_xticks([0.5, 0.75, 1.0, 1.5, 2.0], ["0.5", "0.75", "1", "1.5", "2"])
    right.minorticks_off()
    right.set_xlabel("temperature T (probabilities = softmax(logits / T))")
    right.set_ylabel("expected calibration error", color="#1a73e8")
    right.axvline(1.0, color="#5f6368", ls="--", lw=1.0)
    twin = right.twinx()
    twin.plot(temperatures, ppls, "s-", color="#e37400", ms=3.0, lw=1.4, label="perplexity (your perplexity)")
    twin.set_ylabel("perplexity of the labels", color="#e37400")
    right.set_title(
        "A classifier whose labels are drawn from its own softmax:\ncalibrated at T = 1", fontsize=10
    )
    handles = right.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    right.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper center")
    return png(fig), (
        "Left: sliding-window perplexity of a copy model for each stride (fewer model calls, less history). "
        "Right: ECE and perplexity of a classifier under temperature scaling, both lowest near T = 1"
    )
