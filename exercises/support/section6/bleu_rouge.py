"""Support for exercise 6.2 (BLEU and ROUGE): the library oracles, the corpora its tests
draw, its named misconceptions and the figure.

* :func:`sacrebleu_bleu` — sacrebleu's corpus BLEU on already tokenised input
  (``tokenize="none"``), with the references turned into sacrebleu's streams.
* :func:`rouge_score_oracle` — Google's ``rouge_score`` with a whitespace tokenizer and
  no stemming (imported on first use: it pulls in nltk, which is slow to import).
* :func:`corpus`, :func:`rouge_texts` and the hypothesis strategies :func:`bleu_cases`
  and :func:`rouge_cases` — seeded synthetic text with non-ASCII tokens, shared by the
  public tests and the graders.
* :data:`MISCONCEPTIONS` — the known mistakes a failed check names. Their variants are
  library calls (sacrebleu, rouge_score, difflib) on changed inputs or statistics: no
  BLEU or ROUGE code of our own.
* :func:`figure` — the learner's own metrics as a translation is damaged step by step.
"""

from __future__ import annotations

import difflib
import functools
import random

import torch
from hypothesis import strategies as st

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import CheckFailure, Misconception, Misconceptions, assert_close

SMOOTHING = ("exp", "none")

# --- oracles ---------------------------------------------------------------------


def _bleu_metric(max_n: int, smooth: str):
    from sacrebleu.metrics.bleu import BLEU

    # force=True: no warning about input that "looks tokenised" (ours is, on purpose).
    return BLEU(tokenize="none", smooth_method=smooth, max_ngram_order=max_n, force=True)


def reference_streams(references: list[list[list[str]]]) -> list[list[str | None]]:
    """The exercise's references (one list per hypothesis) as sacrebleu wants them: one
    stream per reference position, ``streams[k][i]`` the k-th reference of hypothesis i,
    joined by spaces. A hypothesis with fewer references gets ``None`` there, which
    sacrebleu drops (an empty string would count as a reference of length 0)."""
    depth = max(len(refs) for refs in references)
    return [[" ".join(refs[k]) if k < len(refs) else None for refs in references] for k in range(depth)]


def _sacrebleu_score(hypotheses, references, max_n=4, smooth="exp"):
    metric = _bleu_metric(max_n, smooth)
    return metric.corpus_score([" ".join(h) for h in hypotheses], reference_streams(references))


def sacrebleu_bleu(
    hypotheses: list[list[str]], references: list[list[list[str]]], max_n: int = 4, smooth: str = "exp"
) -> tuple[float, list[float], float]:
    """``(score, precisions, brevity_penalty)`` from ``sacrebleu`` (score and precisions
    in percent), for tokens without whitespace and at least one reference each."""
    result = _sacrebleu_score(hypotheses, references, max_n, smooth)
    return result.score, list(result.precisions), result.bp


class _Whitespace:
    """rouge_score's tokenizer interface: tokens are ``text.split()``, nothing else."""

    def tokenize(self, text: str) -> list[str]:
        return text.split()


@functools.cache
def _scorer(kind: str):
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer([kind], use_stemmer=False, tokenizer=_Whitespace())


def rouge_score_oracle(kind: str, pred: str, target: str) -> tuple[float, float, float]:
    """``(precision, recall, f)`` of rouge_score's ``kind`` ("rouge1".."rouge9", "rougeL",
    "rougeLsum"). Mind its argument order: ``RougeScorer.score(target, prediction)``."""
    s = _scorer(kind).score(target, pred)[kind]
    return float(s.precision), float(s.recall), float(s.fmeasure)


def rouge_n_oracle(pred: str, target: str, n: int) -> tuple[float, float, float]:
    return rouge_score_oracle(f"rouge{n}", pred, target)


def rouge_l_oracle(pred: str, target: str) -> tuple[float, float, float]:
    return rouge_score_oracle("rougeL", pred, target)


def rouge_lsum_oracle(pred: str, target: str) -> tuple[float, float, float]:
    return rouge_score_oracle("rougeLsum", pred, target)


# --- results as vectors the checks compare ------------------------------------------


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckFailure(
            f"{what}: expected a Python float, got {type(value).__name__}",
            hint="return plain floats (float(x)), not tensors, numpy scalars or strings",
        )
    return float(value)


def bleu_vector(result, max_n: int, name: str = "corpus_bleu") -> torch.Tensor:
    """``(score, precisions, brevity_penalty)`` as one float64 tensor
    ``[score, p1, ..., p_max_n, bp]``, after checking its structure."""
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise CheckFailure(
            f"{name}: expected a tuple (score, precisions, brevity_penalty), got {str(result)[:120]}",
            hint="return score, precisions, brevity_penalty",
        )
    score, precisions, bp = result
    if not isinstance(precisions, (tuple, list)) or len(precisions) != max_n:
        raise CheckFailure(
            f"{name}: expected {max_n} precisions (orders 1..{max_n}), got {str(precisions)[:120]}",
            hint="precisions is a list of max_n floats, in percent like the score",
        )
    values = [_number(score, f"{name}'s score")]
    values += [_number(p, f"{name}'s precision {n + 1}") for n, p in enumerate(precisions)]
    values.append(_number(bp, f"{name}'s brevity penalty"))
    return torch.tensor(values, dtype=torch.float64)


def prf_vector(result, name: str) -> torch.Tensor:
    """``(precision, recall, f)`` as one float64 tensor, after checking its structure."""
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise CheckFailure(
            f"{name}: expected a tuple (precision, recall, f), got {str(result)[:120]}",
            hint="return precision, recall, f",
        )
    return torch.tensor([_number(v, f"{name}[{i}]") for i, v in enumerate(result)], dtype=torch.float64)


# Scores are sums of logs and ratios of integers: a correct implementation agrees with
# the libraries to rounding (~1e-13 relative); every mistake is off by far more.
RTOL = ATOL = 1e-9


def describe_corpus(hypotheses, references, limit: int = 300) -> str:
    text = f"hypotheses={hypotheses!r}, references={references!r}"
    return text if len(text) <= limit else f"{text[: limit - 40]} ... ({len(hypotheses)} sentences)"


def _shown(values: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values.tolist()) + "]"


def _labelled(call: str, fields: str, got: torch.Tensor, want: torch.Tensor) -> str:
    """The check's name: the call, then both results in full when they differ."""
    if torch.allclose(got, want, rtol=RTOL, atol=ATOL):
        return f"{call} as {fields}"
    return f"{call}\n  got      {_shown(got)}\n  expected {_shown(want)}\nas {fields}"


def check_bleu(got, hypotheses, references, max_n=4, smooth="exp", *, name=None, hint=None) -> None:
    """The learner's ``corpus_bleu`` result against sacrebleu's, naming a likely mistake."""
    call = name or f"corpus_bleu({describe_corpus(hypotheses, references)}, max_n={max_n}, smooth={smooth!r})"
    got_v = bleu_vector(got, max_n)
    want_v = bleu_vector(sacrebleu_bleu(hypotheses, references, max_n, smooth), max_n)
    orders = "p1" if max_n == 1 else f"p1..p{max_n}"
    assert_close(
        got_v,
        want_v,
        name=_labelled(call, f"[score, {orders}, brevity_penalty]", got_v, want_v),
        rtol=RTOL,
        atol=ATOL,
        hint=hint,
        suspects=MISCONCEPTIONS.on("corpus_bleu", hypotheses, references, max_n=max_n, smooth=smooth),
    )


def check_rouge(got, function: str, *args, hint=None) -> None:
    """The learner's ``rouge_n`` / ``rouge_l`` / ``rouge_lsum`` result against rouge_score's."""
    oracle = {"rouge_n": rouge_n_oracle, "rouge_l": rouge_l_oracle, "rouge_lsum": rouge_lsum_oracle}[function]
    call = f"{function}({', '.join(repr(a) for a in args)})"
    if len(call) > 300:
        call = f"{call[:260]} ... ({len(call)} characters)"
    got_v, want_v = prf_vector(got, function), prf_vector(oracle(*args), function)
    assert_close(
        got_v,
        want_v,
        name=_labelled(call, "[precision, recall, f]", got_v, want_v),
        rtol=RTOL,
        atol=ATOL,
        hint=hint,
        suspects=MISCONCEPTIONS.on(function, *args),
    )


# --- inputs the public tests and graders draw ------------------------------------------

WORDS = (
    "the", "a", "cat", "sat", "on", "mat", "dog", "is", "of", "and", "to", "in", "it", "was",
    "red", "big", "ran", "fast", "house", "tree", "we", "saw", "quickly", ".", ",", "!",
)  # fmt: skip
# Non-ASCII tokens, none holding whitespace of any kind. "café" appears composed (NFC) and
# decomposed (NFD): they are different strings, and neither library normalises them.
UNICODE_WORDS = (
    "café", "cafe\u0301", "naïve", "Straße", "日本", "東京", "über", "ñandú", "Ωμέγα",
    "😀", "👍🏽", "👨\u200d👩\u200d👧", "İstanbul", "ǅ", "«", "»",
)  # fmt: skip


def _vocabulary(rng: random.Random, size: int, unicode_share: float) -> list[str]:
    n_unicode = round(size * unicode_share)
    return rng.sample(WORDS, size - n_unicode) + rng.sample(UNICODE_WORDS, n_unicode)


def _edited(rng: random.Random, tokens: list[str], vocab: list[str], rate: float) -> list[str]:
    """A noisy copy: each token kept, replaced, dropped, doubled or followed by a new one."""
    out: list[str] = []
    for token in tokens:
        roll = rng.random()
        if roll < rate * 0.4:
            out.append(rng.choice(vocab))
        elif roll < rate * 0.6:
            continue
        elif roll < rate * 0.8:
            out += [token, token]
        elif roll < rate:
            out += [token, rng.choice(vocab)]
        else:
            out.append(token)
    if len(out) > 1 and rng.random() < rate:
        i = rng.randrange(len(out) - 1)
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


def corpus(
    seed: int,
    n_sentences: int = 4,
    max_len: int = 10,
    max_refs: int = 3,
    vocab_size: int = 10,
    unicode_share: float = 0.3,
    noise: float = 0.4,
    min_len: int = 0,
) -> tuple[list[list[str]], list[list[list[str]]]]:
    """``(hypotheses, references)``: ``n_sentences`` hypotheses, each with 1..``max_refs``
    references, drawn from a small vocabulary (so n-grams repeat and clipping matters).
    References are noisy copies of one sentence, the hypothesis another noisy copy."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng, vocab_size, unicode_share)
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]  # Zipf-like: a few very common tokens
    hypotheses, references = [], []
    for _ in range(n_sentences):
        length = rng.randint(min_len, max_len)
        source = rng.choices(vocab, weights, k=length)
        refs = [_edited(rng, source, vocab, noise * 0.5) for _ in range(rng.randint(1, max_refs))]
        hypotheses.append(_edited(rng, source, vocab, noise))
        references.append(refs)
    return hypotheses, references


@st.composite
def bleu_cases(draw_st, max_sentences: int = 5, max_len: int = 10, max_refs: int = 3):
    """``(hypotheses, references, max_n, smooth)`` for one ``corpus_bleu`` call."""
    hyps, refs = corpus(
        draw_st(st.integers(0, 2**31 - 1)),
        n_sentences=draw_st(st.integers(1, max_sentences)),
        max_len=draw_st(st.integers(0, max_len)),
        max_refs=draw_st(st.integers(1, max_refs)),
        vocab_size=draw_st(st.integers(2, 12)),
        noise=draw_st(st.sampled_from([0.0, 0.2, 0.5, 0.9])),
    )
    return hyps, refs, draw_st(st.integers(1, 5)), draw_st(st.sampled_from(SMOOTHING))


def _spaced(rng: random.Random, tokens: list[str]) -> str:
    """Tokens joined by whitespace, sometimes a run of spaces or a tab."""
    text = ""
    for i, token in enumerate(tokens):
        if i:
            text += rng.choice([" ", " ", " ", "  ", "\t"])
        text += token
    return text


def rouge_texts(seed: int, max_len: int = 12, vocab_size: int = 10, lines: int = 1, noise: float = 0.5):
    """``(pred, target)`` strings; with ``lines > 1`` each holds up to that many sentences
    joined by "\\n", with the odd blank line, padded line or trailing newline."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng, vocab_size, 0.3)
    target_lines, pred_lines = [], []
    for _ in range(rng.randint(1, lines)):
        source = [rng.choice(vocab) for _ in range(rng.randint(0, max_len))]
        target_lines.append(source)
        if rng.random() < 0.8:
            pred_lines.append(_edited(rng, source, vocab, noise))
    if lines > 1:
        rng.shuffle(pred_lines)  # a summary's sentences need not come in the target's order

    def join(sentences: list[list[str]]) -> str:
        parts = [_spaced(rng, s) for s in sentences]
        if lines > 1:
            if parts and rng.random() < 0.3:
                parts.insert(rng.randrange(len(parts) + 1), rng.choice(["", "  "]))
            if rng.random() < 0.3:
                parts.append("")
        return "\n".join(parts)

    return join(pred_lines), join(target_lines)


@st.composite
def rouge_cases(draw_st, max_len: int = 12, lines: int = 1):
    """``(pred, target)`` for one ROUGE call."""
    return rouge_texts(
        draw_st(st.integers(0, 2**31 - 1)),
        max_len=draw_st(st.integers(0, max_len)),
        vocab_size=draw_st(st.integers(2, 12)),
        lines=lines,
        noise=draw_st(st.sampled_from([0.0, 0.3, 0.6, 1.0])),
    )


def speed_corpus(seed: int, n_sentences: int = 2000):
    """A corpus the size of a test set: sentences of 10..40 tokens from a 2,000-word
    vocabulary, 1..4 references each."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(1990)] + list(UNICODE_WORDS[:10])
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
    hypotheses, references = [], []
    for _ in range(n_sentences):
        source = rng.choices(vocab, weights, k=rng.randint(10, 40))
        references.append([_edited(rng, source, vocab, 0.3) for _ in range(rng.randint(1, 4))])
        hypotheses.append(_edited(rng, source, vocab, 0.5))
    return hypotheses, references


# --- misconceptions: what each mistake returns, from the libraries ----------------------


def _bleu_with_reference_length(choose):
    """BLEU whose brevity penalty uses ``choose(hyp_len, ref_lens)`` per sentence: sacrebleu's
    clipped counts, then its own ``BLEU.compute_bleu`` given the other reference length."""

    def variant(hypotheses, references, max_n=4, smooth="exp"):
        from sacrebleu.metrics.bleu import BLEU

        counts = _sacrebleu_score(hypotheses, references, max_n, smooth)
        ref_len = sum(choose(len(h), [len(r) for r in refs]) for h, refs in zip(hypotheses, references))
        s = BLEU.compute_bleu(
            list(counts.counts), list(counts.totals), counts.sys_len, ref_len, smooth, None, False, max_n
        )
        return bleu_vector((s.score, s.precisions, s.bp), max_n)

    return variant


def _closest_tie_to_longer(hyp_len: int, ref_lens: list[int]) -> int:
    return min(ref_lens, key=lambda r: (abs(r - hyp_len), -r))


def _bleu_without_clipping(hypotheses, references, max_n=4, smooth="exp"):
    """sacrebleu clips each n-gram at the most any one reference holds. Give every sentence
    one more reference in which every reference n-gram occurs more often than the
    hypothesis could use (all references repeated, separated by a token the hypothesis
    lacks, so no new n-gram can match) and nothing is clipped. That reference is far
    longer than the hypothesis, so it is never the closest one."""
    padded = []
    for hyp, refs in zip(hypotheses, references):
        separator = "\u241e" + "\u241e".join(sorted(set(hyp)))  # a token that is not in hyp
        block = [t for ref in refs for t in [*ref, separator]]
        padded.append([*refs, block * (2 * len(hyp) + 2)])
    return bleu_vector(sacrebleu_bleu(hypotheses, padded, max_n, smooth), max_n)


def _mean_of_sentence_bleu(hypotheses, references, max_n=4, smooth="exp"):
    rows = [
        bleu_vector(sacrebleu_bleu([h], [r], max_n, smooth), max_n) for h, r in zip(hypotheses, references)
    ]
    return torch.stack(rows).mean(dim=0)


def _swapped(oracle):
    def variant(*args):
        precision, recall, f = oracle(*args)
        return prf_vector((recall, precision, f), "swapped")

    return variant


def _rouge_l_with_substring(pred: str, target: str):
    """ROUGE-L with the longest common *substring* (contiguous run) in place of the
    longest common subsequence: difflib finds it (no junk heuristics)."""
    p, t = pred.split(), target.split()
    if not p or not t:
        return prf_vector((0.0, 0.0, 0.0), "substring")
    size = difflib.SequenceMatcher(None, t, p, autojunk=False).find_longest_match(0, len(t), 0, len(p)).size
    precision, recall = size / len(p), size / len(t)
    f = 2 * precision * recall / (precision + recall) if size else 0.0
    return prf_vector((precision, recall, f), "substring")


MISCONCEPTIONS = Misconceptions(
    "exercises/section6/README.md",
    Misconception(
        "no_clipping",
        "n-gram matches not clipped",
        "a hypothesis n-gram counts as matched at most as often as it occurs in one reference "
        "(the largest count over the references): 'the the the' against 'the cat' matches once",
        readme="6.2 — Clipping",
        variants={"corpus_bleu": _bleu_without_clipping},
    ),
    Misconception(
        "closest_tie_longer",
        "a tie for the closest reference goes to the longer one",
        "when two references are equally close to the hypothesis length, take the shorter "
        "(sacrebleu and nltk do)",
        readme="6.2 — The brevity penalty",
        variants={"corpus_bleu": _bleu_with_reference_length(_closest_tie_to_longer)},
    ),
    Misconception(
        "bp_longest_ref",
        "brevity penalty from the longest reference",
        "r is the sum over sentences of the reference length closest to the hypothesis length, "
        "not the longest reference",
        readme="6.2 — The brevity penalty",
        variants={"corpus_bleu": _bleu_with_reference_length(lambda h, lens: max(lens))},
    ),
    Misconception(
        "mean_of_sentence_bleu",
        "corpus BLEU as the mean of sentence BLEU",
        "corpus BLEU pools matches, n-gram totals and lengths over all sentences, then computes "
        "one score; averaging per-sentence scores gives another (lower, noisier) number",
        readme="6.2 — Corpus pooling",
        variants={"corpus_bleu": _mean_of_sentence_bleu},
    ),
    Misconception(
        "precision_recall_swapped",
        "precision and recall swapped",
        "precision divides the overlap by the prediction's count, recall by the target's "
        "(rouge_score.score takes target first, prediction second)",
        readme="6.2 — Precision, recall and argument order",
        variants={
            "rouge_n": _swapped(rouge_n_oracle),
            "rouge_l": _swapped(rouge_l_oracle),
            "rouge_lsum": _swapped(rouge_lsum_oracle),
        },
    ),
    Misconception(
        "longest_common_substring",
        "longest common substring instead of subsequence",
        "ROUGE-L's LCS may skip tokens: 'a x b' and 'a b' share the subsequence 'a b' (2), "
        "not only a contiguous run (1)",
        readme="6.2 — Subsequence, not substring",
        variants={"rouge_l": _rouge_l_with_substring},
    ),
    Misconception(
        "lsum_as_rouge_l",
        "ROUGE-Lsum computed as ROUGE-L on the whole text",
        "ROUGE-Lsum splits both texts at newlines and unions, per target sentence, its LCS "
        "with every predicted sentence",
        readme="6.2 — ROUGE-Lsum",
        variants={"rouge_lsum": lambda pred, target: prf_vector(rouge_l_oracle(pred, target), "rougeL")},
    ),
    Misconception(
        "ngrams_counted_by_scanning",
        "n-grams counted by scanning lists",
        "scanning every n-gram list once per distinct n-gram is quadratic in the sentence "
        "length: count each sentence's n-grams once into a Counter (a dict) and look them up",
        readme="6.2 — Speed",
        kind="speed",
    ),
)


def check_one_call(impl, draw) -> None:
    """One small call each of the learner's ``corpus_bleu`` and ``rouge_l``, checked
    against the libraries: the generated ban test (``test_no_library_shortcuts``)
    makes them after its static scan, with the banned calls trapped."""
    hyps, refs = corpus(int(draw.integers(0, 2**31 - 1)), n_sentences=3, max_len=8, min_len=4)
    check_bleu(impl.corpus_bleu(hyps, refs), hyps, refs)
    pred, target = "the cat sat on the mat", "the cat was on the red mat"
    check_rouge(impl.rouge_l(pred, target), "rouge_l", pred, target)


# --- figure ---------------------------------------------------------------------------


def _damaged(rng: random.Random, tokens: list[str], vocab: list[str], rate: float) -> list[str]:
    return [rng.choice(vocab) if rng.random() < rate else t for t in tokens]


def _shuffled(rng: random.Random, tokens: list[str], rate: float) -> list[str]:
    out = list(tokens)
    for _ in range(round(rate * len(out))):
        i, j = rng.randrange(len(out)), rng.randrange(len(out))
        out[i], out[j] = out[j], out[i]
    return out


def figure(impl) -> Figure:
    """The learner's BLEU and ROUGE on a synthetic test set as its hypotheses are damaged:
    tokens replaced, hypotheses cut short, word order shuffled."""
    rng = random.Random(6)
    vocab = [f"w{i}" for i in range(300)]
    refs = [[rng.choices(vocab, k=rng.randint(12, 24))] for _ in range(40)]
    rates = [i / 10 for i in range(11)]

    def rouge_f(fn, hyps, *extra):
        pairs = [(" ".join(h), " ".join(r[0])) for h, r in zip(hyps, refs)]
        return 100 * sum(fn(p, t, *extra)[2] for p, t in pairs) / len(pairs)

    panels = []
    for title, damage in (
        ("tokens replaced", lambda r, rate, g: _damaged(g, r, vocab, rate)),
        ("hypothesis cut short", lambda r, rate, g: r[: max(1, round(len(r) * (1 - rate)))]),
        ("word order shuffled", lambda r, rate, g: _shuffled(g, r, rate)),
    ):
        curves = {"BLEU": [], "BP x 100": [], "ROUGE-1 F": [], "ROUGE-2 F": [], "ROUGE-L F": []}
        for rate in rates:
            g = random.Random(int(rate * 100))
            hyps = [damage(r[0], rate, g) for r in refs]
            score, _, bp = impl.corpus_bleu(hyps, refs)
            curves["BLEU"].append(score)
            curves["BP x 100"].append(100 * bp)
            curves["ROUGE-1 F"].append(rouge_f(impl.rouge_n, hyps, 1))
            curves["ROUGE-2 F"].append(rouge_f(impl.rouge_n, hyps, 2))
            curves["ROUGE-L F"].append(rouge_f(impl.rouge_l, hyps))
        panels.append((title, curves))
    fig, axes = new_figure(12.0, 3.6, ncols=3)
    styles = {
        "BLEU": dict(fmt="-o", color="tab:blue"),
        "BP x 100": dict(fmt=":", color="black", linewidth=2.0, zorder=5),
        "ROUGE-1 F": dict(fmt="-s", color="tab:green"),
        "ROUGE-2 F": dict(fmt="--", color="tab:red"),
        "ROUGE-L F": dict(fmt="-^", color="tab:purple"),
    }
    for ax, (title, curves) in zip(axes, panels):
        for label, values in curves.items():
            style = dict(styles[label])
            ax.plot([100 * r for r in rates], values, style.pop("fmt"), label=label, markersize=3, **style)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("damage (%)")
        ax.set_ylim(-3, 103)
    axes[1].annotate("BLEU = BP here:\nevery n-gram left\nstill matches", (3, 8), fontsize=8)
    axes[0].set_ylabel("your score (0-100)")
    axes[0].legend(fontsize=8)
    caption = (
        "Your corpus BLEU (with its brevity penalty) and ROUGE-1/2/L F on 40 synthetic sentences as "
        "the hypotheses are damaged: tokens replaced, sentences cut short, word order shuffled "
        "(ROUGE-1 does not see it)"
    )
    return png(fig), caption
