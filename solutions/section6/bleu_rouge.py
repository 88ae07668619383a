"""Exercise 6.2: BLEU and ROUGE (reference solution).

Corpus BLEU as sacrebleu computes it (tokenize="none", smooth_method="exp" or
"none"), and ROUGE-N, ROUGE-L and ROUGE-Lsum as Google's rouge_score computes them
(whitespace tokens, no stemming). Plain Python: Counters and one dynamic-programming
table per sentence pair.
"""

from __future__ import annotations

import math
from collections import Counter

# --- BLEU ----------------------------------------------------------------------


def _ngram_counts(tokens: list[str], max_n: int) -> Counter:
    """Every n-gram of ``tokens`` for n = 1..max_n (tuples of tokens), with its count."""
    counts: Counter = Counter()
    length = len(tokens)
    for n in range(1, max_n + 1):
        for i in range(length - n + 1):
            counts[tuple(tokens[i : i + n])] += 1
    return counts


def _max_reference_counts(references: list[list[str]], max_n: int) -> Counter:
    """For each n-gram, the largest number of times any one reference holds it."""
    best = _ngram_counts(references[0], max_n)
    for ref in references[1:]:
        for gram, count in _ngram_counts(ref, max_n).items():
            if count > best[gram]:
                best[gram] = count
    return best


def _closest_reference_length(hyp_len: int, ref_lens: list[int]) -> int:
    """The reference length nearest the hypothesis length; a tie goes to the shorter."""
    return min(ref_lens, key=lambda r: (abs(r - hyp_len), r))


def _sentence_statistics(hypothesis, references, max_n):
    """(hypothesis length, closest reference length, clipped matches per order, n-grams per order)."""
    hyp_counts = _ngram_counts(hypothesis, max_n)
    ref_counts = _max_reference_counts(references, max_n)
    matches = [0] * max_n
    totals = [0] * max_n
    for gram, count in hyp_counts.items():
        n = len(gram) - 1
        totals[n] += count
        allowed = ref_counts.get(gram, 0)
        if allowed:
            matches[n] += min(count, allowed)
    ref_len = _closest_reference_length(len(hypothesis), [len(r) for r in references])
    return len(hypothesis), ref_len, matches, totals


def _bleu_from_statistics(hyp_len, ref_len, matches, totals, max_n, smooth):
    """(score, precisions, brevity penalty) from corpus totals, with sacrebleu's conventions."""
    if hyp_len >= ref_len:
        bp = 1.0
    else:
        bp = math.exp(1.0 - ref_len / hyp_len) if hyp_len > 0 else 0.0
    precisions = [0.0] * max_n
    if not any(matches):
        return 0.0, precisions, bp
    halvings = 1
    for n in range(max_n):
        if totals[n] == 0:
            break  # no hypothesis n-grams of this order or above: those precisions stay 0
        if matches[n] == 0:
            if smooth == "exp":
                halvings *= 2
                precisions[n] = 100.0 / (halvings * totals[n])
        else:
            precisions[n] = 100.0 * matches[n] / totals[n]
    if min(precisions) == 0.0:
        return 0.0, precisions, bp
    score = bp * math.exp(sum(math.log(p) for p in precisions) / max_n)
    return score, precisions, bp


def _check_bleu_arguments(hypotheses, references, max_n, smooth):
    if smooth not in ("exp", "none"):
        raise ValueError(f"smooth must be 'exp' or 'none', not {smooth!r}")
    if max_n < 1:
        raise ValueError(f"max_n must be at least 1, not {max_n}")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every hypothesis needs at least one reference")


def corpus_bleu(
    hypotheses: list[list[str]],
    references: list[list[list[str]]],
    max_n: int = 4,
    smooth: str = "exp",
) -> tuple[float, list[float], float]:
    _check_bleu_arguments(hypotheses, references, max_n, smooth)
    hyp_len = ref_len = 0
    matches = [0] * max_n
    totals = [0] * max_n
    for hypothesis, refs in zip(hypotheses, references):
        h, r, m, t = _sentence_statistics(hypothesis, refs, max_n)
        hyp_len += h
        ref_len += r
        for n in range(max_n):
            matches[n] += m[n]
            totals[n] += t[n]
    return _bleu_from_statistics(hyp_len, ref_len, matches, totals, max_n, smooth)


# --- ROUGE ---------------------------------------------------------------------


def _precision_recall_f(overlap: int, n_pred: int, n_target: int) -> tuple[float, float, float]:
    """Precision over the prediction's units, recall over the target's, and their F1."""
    precision = overlap / n_pred if n_pred else 0.0
    recall = overlap / n_target if n_target else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f


def rouge_n(pred: str, target: str, n: int) -> tuple[float, float, float]:
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    pred_tokens, target_tokens = pred.split(), target.split()
    pred_grams = Counter(tuple(pred_tokens[i : i + n]) for i in range(len(pred_tokens) - n + 1))
    target_grams = Counter(tuple(target_tokens[i : i + n]) for i in range(len(target_tokens) - n + 1))
    overlap = sum(min(count, pred_grams[g]) for g, count in target_grams.items() if g in pred_grams)
    return _precision_recall_f(overlap, sum(pred_grams.values()), sum(target_grams.values()))


def _lcs_positions(target: list[str], pred: list[str]) -> list[int]:
    """Positions in ``target`` of one longest common subsequence with ``pred``, read back
    from the table as rouge_score does: a match steps diagonally; otherwise step along
    ``pred`` only when that keeps a strictly longer LCS, else along ``target``."""
    rows, cols = len(target), len(pred)
    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(1, rows + 1):
        row, above, t = table[i], table[i - 1], target[i - 1]
        for j in range(1, cols + 1):
            if t == pred[j - 1]:
                row[j] = above[j - 1] + 1
            else:
                row[j] = row[j - 1] if row[j - 1] > above[j] else above[j]
    positions = []
    i, j = rows, cols
    while i > 0 and j > 0:
        if target[i - 1] == pred[j - 1]:
            positions.append(i - 1)
            i -= 1
            j -= 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    positions.reverse()
    return positions


def rouge_l(pred: str, target: str) -> tuple[float, float, float]:
    pred_tokens, target_tokens = pred.split(), target.split()
    if not pred_tokens or not target_tokens:
        return 0.0, 0.0, 0.0
    lcs = len(_lcs_positions(target_tokens, pred_tokens))
    return _precision_recall_f(lcs, len(pred_tokens), len(target_tokens))


def _sentences(text: str) -> list[list[str]]:
    """The text's lines (split at "\\n" only; empty lines dropped), each as its tokens."""
    return [line.split() for line in text.split("\n") if line]


def rouge_lsum(pred: str, target: str) -> tuple[float, float, float]:
    pred_sents, target_sents = _sentences(pred), _sentences(target)
    n_pred = sum(len(s) for s in pred_sents)
    n_target = sum(len(s) for s in target_sents)
    if not n_pred or not n_target:
        return 0.0, 0.0, 0.0
    pred_left = Counter(t for s in pred_sents for t in s)
    target_left = Counter(t for s in target_sents for t in s)
    hits = 0
    for ref in target_sents:
        union: set[int] = set()
        for cand in pred_sents:
            union.update(_lcs_positions(ref, cand))
        for position in sorted(union):
            token = ref[position]
            if pred_left[token] > 0 and target_left[token] > 0:
                hits += 1
                pred_left[token] -= 1
                target_left[token] -= 1
    return _precision_recall_f(hits, n_pred, n_target)
