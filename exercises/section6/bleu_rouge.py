"""Exercise 6.2: BLEU and ROUGE.

Replace every ``raise NotImplementedError`` with your implementation, then run

    pytest exercises/section6/test_bleu_rouge.py      (or: llmkit check 6.2)

You write corpus BLEU exactly as sacrebleu computes it (``tokenize="none"``), and
ROUGE-N, ROUGE-L and ROUGE-Lsum exactly as Google's ``rouge_score`` computes them with
a whitespace tokenizer and no stemming. The docstrings state every convention where
implementations disagree; the tests hold you to those two libraries.

Plain Python is all you need (``collections.Counter``, ``math``). Banned here (a
static scan and a runtime trap enforce it): the libraries that already do it —
``sacrebleu`` (``corpus_bleu``, ``sentence_bleu``, ``BLEU``, its n-gram helper),
``rouge_score`` (``RougeScorer`` and its LCS and n-gram helpers) and ``nltk``'s
``nltk.translate.bleu_score`` functions.
"""

from __future__ import annotations

import math  # noqa: F401  (you will want math.exp and math.log)
from collections import Counter  # noqa: F401  (n-gram counts)


def corpus_bleu(
    hypotheses: list[list[str]],
    references: list[list[list[str]]],
    max_n: int = 4,
    smooth: str = "exp",
) -> tuple[float, list[float], float]:
    """Corpus BLEU of already tokenised text, as ``sacrebleu.corpus_bleu`` computes it.

    Inputs:
        hypotheses: one token list per sentence, e.g. ``[["the", "cat", "sat"], ...]``.
        references: ``references[i]`` is the list of references of hypothesis i, each a
            token list; any number (at least one) per hypothesis, and the number may
            differ from sentence to sentence. (sacrebleu itself wants the transpose,
            one "stream" per reference position; here it is one list per hypothesis.)
        max_n: the highest n-gram order (orders 1..max_n).
        smooth: "exp" (sacrebleu's default) or "none"; anything else is a ValueError
            (as are lists of different lengths and a hypothesis without references).

    Returns ``(score, precisions, brevity_penalty)``: the score in 0..100, the
    ``max_n`` n-gram precisions in percent (0..100, as sacrebleu reports them), and the
    brevity penalty in 0..1, all Python floats.

    Conventions (sacrebleu's):
      * Tokens are compared as strings, exactly (no lowercasing, no Unicode
        normalisation). n-grams never cross from one sentence to the next.
      * Clipping: a hypothesis n-gram is matched at most as many times as it occurs in
        the one reference that holds it most often (the max over references, not the sum).
      * Corpus pooling: add up matches and hypothesis n-gram counts per order over all
        sentences, and the lengths c (hypothesis tokens) and r (below); compute one
        score from the totals. Not the mean of sentence scores.
      * r: for each sentence, the length of the reference closest to the hypothesis
        length; on a tie, the shorter one. BP = 1 if c >= r, exp(1 - r / c) if
        0 < c < r, and 0.0 if c == 0 < r.
      * If no n-gram of any order matches anywhere: score 0.0 and every precision 0.0.
      * Otherwise, for n = 1..max_n in turn: p_n = 100 * matches_n / total_n (matches
        and totals summed over the corpus). If total_n == 0 (no hypothesis is n tokens
        long), p_n and every higher order stay 0.0. An order with total_n > 0 but no
        match: with smooth="exp", p_n = 100 / (2**k * total_n), where k = 1 for the
        first such order, 2 for the second, ... (half a match, then a quarter, ...);
        with smooth="none", p_n = 0.0.
      * score = BP * exp((1 / max_n) * sum over n of log p_n); 0.0 if any p_n is 0.0.
    """
    raise NotImplementedError("exercise 6.2: write corpus_bleu()")


def rouge_n(pred: str, target: str, n: int) -> tuple[float, float, float]:
    """ROUGE-N of a prediction against one target, as ``rouge_score`` computes it.

    Both texts are strings; their tokens are ``text.split()`` (whitespace, newlines
    included; no lowercasing, no stemming). Returns ``(precision, recall, f)``:
    overlap = sum over n-grams of min(count in pred, count in target);
    precision = overlap / (number of n-grams in pred), recall = overlap / (number of
    n-grams in target), each 0.0 when that number is 0; f = 2 p r / (p + r), 0.0 when
    p + r == 0. ``n`` >= 1 (else ValueError).

    Mind the order: here the prediction comes first; ``RougeScorer.score`` takes the
    target first.
    """
    raise NotImplementedError("exercise 6.2: write rouge_n()")


def rouge_l(pred: str, target: str) -> tuple[float, float, float]:
    """ROUGE-L: ``(precision, recall, f)`` from the longest common subsequence (LCS) of
    the two token lists (``text.split()``). A subsequence keeps the order but may skip
    tokens: "a x b" and "a b" share "a b". precision = LCS / len(pred tokens),
    recall = LCS / len(target tokens), f as in ``rouge_n``; all 0.0 if either text has
    no tokens.
    """
    raise NotImplementedError("exercise 6.2: write rouge_l()")


def rouge_lsum(pred: str, target: str) -> tuple[float, float, float]:
    """ROUGE-Lsum, the summary-level ROUGE-L, as ``rouge_score``'s "rougeLsum".

    Sentences: split each text at "\\n" only (``text.split("\\n")``, not
    ``splitlines()``), drop empty strings, tokenize each sentence with ``.split()``.
    If either side has no sentences or no tokens, return (0.0, 0.0, 0.0).

    For each target sentence, take the *union* of its LCS positions with every
    predicted sentence: the set of target-sentence positions that lie on the LCS with
    at least one predicted sentence. Which LCS, when several exist, matters; take the
    one rouge_score reads back from the usual table T (T[i][j] = LCS length of the
    target sentence's first i tokens and the predicted sentence's first j): start at
    (i, j) = (len(target_sentence), len(pred_sentence)); while i > 0 and j > 0: if the
    tokens at i-1 and j-1 are equal, keep target position i-1 and step to (i-1, j-1);
    else if T[i][j-1] > T[i-1][j] step to (i, j-1); else step to (i-1, j).

    Hits: count every token, over the whole target and the whole prediction; then for
    each target sentence in order, each position in its union in increasing order:
    if that token still has a count > 0 on both sides, it is a hit and both counts go
    down by one (a token cannot be credited more often than either text holds it).
    precision = hits / (all predicted tokens), recall = hits / (all target tokens),
    f as in ``rouge_n``.
    """
    raise NotImplementedError("exercise 6.2: write rouge_lsum()")
