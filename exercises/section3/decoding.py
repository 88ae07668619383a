"""Exercise 3.2: Decoding and sampling.

A language model gives one vector of *logits* over the vocabulary for the next token.
Decoding is everything that turns those vectors into text: reshaping the distribution
(temperature, top-k, top-p, a repetition penalty), drawing from it, and searching for
a likely sequence (beam search). Replace every ``raise NotImplementedError``, then run

    pytest exercises/section3/test_decoding.py      (or: llmkit check 3.2)

You write:

* ``apply_temperature``, ``top_k_filter``, ``top_p_filter``, ``repetition_penalty``:
  each takes logits and returns a NEW tensor of the same shape and dtype (the input is
  never modified); a filtered-out entry becomes ``-inf`` and a kept entry keeps its
  value exactly;
* ``sample``: one token per row, drawn from softmax(logits);
* ``generate``: the sampling loop, filters in transformers' order
  (repetition penalty -> temperature -> top-k -> top-p);
* ``beam_search``: the classic beam search with a length penalty.

Where libraries disagree, this exercise follows Hugging Face transformers'
``RepetitionPenaltyLogitsProcessor``, ``TemperatureLogitsWarper``,
``TopKLogitsWarper`` and ``TopPLogitsWarper`` (the hidden graders compare with them):

* top-p keeps the token that CROSSES p (the smallest set whose mass reaches p);
* top-k keeps every token tied with the k-th largest logit (possibly more than k);
* the repetition penalty applies once per DISTINCT id, prompt included, and divides a
  positive logit but multiplies a negative one (both push the token down).

``NGramLM`` at the end is given (keep it as it is): a tiny language model built from a
table of logits, the ``step_fn`` the tests hand to ``generate`` and ``beam_search``.
Play with it: ``generate(NGramLM(torch.randn(5, 5)), torch.zeros(1, 1, dtype=torch.long), 10)``.

Nothing is banned: torch.sort, torch.topk, torch.multinomial, scatter and gather are
all fine (do not import transformers: it is the graders' oracle). The graders time the
filters on (16, 50257) logits (GPT-2's vocabulary) against transformers' processors:
top-k and top-p should take at most about 2x their time (the limit, 3x, leaves room for
noisy machines), the repetition penalty at most 8x. No Python loop over rows or tokens.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

StepFn = Callable[[torch.Tensor], torch.Tensor]  # ids (B, L) int64 -> next-token logits (B, V)


# --- reshaping the distribution ----------------------------------------------------


def apply_temperature(logits: torch.Tensor, t: float) -> torch.Tensor:
    """``logits / t``: t < 1 sharpens the distribution, t > 1 flattens it.

    logits: (..., V) float32 or float64; returns a new tensor, same shape and dtype.
    ``t`` must be > 0 (else ``ValueError``; greedy decoding is ``top_k=1``, not t = 0).
    ``-inf`` entries stay ``-inf``.
    """
    raise NotImplementedError


def top_k_filter(logits: torch.Tensor, k: int, min_keep: int = 1) -> torch.Tensor:
    """Keep, in each row (last axis), the tokens whose logit is >= the k-th largest
    logit of that row; every other entry becomes ``-inf``.

    * Ties: every token equal to the k-th largest value is kept, so a row may keep
      more than k tokens (logits [3, 2, 2, 1] with k = 2 keep 3, 2, 2).
    * ``k`` is raised to ``min_keep``; k >= V keeps the whole row.
    * ``k`` must be a positive int (else ``ValueError``).

    logits: (..., V) float; returns a new tensor, same shape and dtype, kept entries
    unchanged. Must be fast on (16, 50257): you need the k-th value, not a full sort.
    """
    raise NotImplementedError


def top_p_filter(logits: torch.Tensor, p: float, min_keep: int = 1) -> torch.Tensor:
    """Nucleus filtering: keep, in each row, the most probable tokens until their total
    probability reaches ``p``; every other entry becomes ``-inf``.

    With probs = softmax(row) ranked from the most to the least probable, a token is
    kept when the probability mass of the tokens ranked BEFORE it is < p. So the token
    that crosses p is kept: probs [0.5, 0.3, 0.2] with p = 0.6 keep the first two
    (0.5 < 0.6, and 0.8 >= 0.6 once the second is in). The ``min_keep`` most probable
    tokens are always kept, so p = 0 keeps ``min_keep`` tokens; p = 1 keeps every token
    of non-zero probability.

    * ``-inf`` entries have probability 0 (they may come from top-k before): they rank
      last and stay ``-inf``.
    * Which of two equally probable tokens ranks first is up to you: the tests never
      tie at the cut.
    * ``p`` must be in [0, 1] (else ``ValueError``).

    logits: (..., V) float; returns a new tensor, same shape and dtype, kept entries
    unchanged. Fully vectorised: the graders time it on (16, 50257), where the rounding
    of a float32 sum of 50 000 probabilities may move the cut by a token (allowed there).
    """
    raise NotImplementedError


def repetition_penalty(logits: torch.Tensor, input_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """Push down every token that already occurs in the row's ``input_ids`` (CTRL's
    repetition penalty, as transformers applies it).

    logits: (B, V) float; input_ids: (B, L) int64 with ids in [0, V), the WHOLE sequence
    so far (prompt included); L may be 0. For each row b and each DISTINCT id in
    input_ids[b], the logit x = logits[b, id] becomes

        x * penalty   if x < 0
        x / penalty   otherwise

    so with penalty > 1 the token always becomes less likely (dividing a negative logit
    would raise it). An id that occurs five times is penalised once, not five times.
    ``penalty`` must be > 0 (else ``ValueError``); 1.0 changes nothing and a penalty
    below 1 rewards repetition. Returns a new tensor, same shape and dtype.
    """
    raise NotImplementedError


# generate's parameter `repetition_penalty` hides the function above inside generate:
# call the function there by this second name.
_repetition_penalty = repetition_penalty


# --- drawing tokens ----------------------------------------------------------------


def sample(logits: torch.Tensor, generator: torch.Generator | int | None = None) -> torch.Tensor:
    """One token per row, drawn from softmax(logits) along the last axis.

    logits: (..., V) float with at least one finite entry per row; returns int64 of
    shape ``logits.shape[:-1]`` (a (B, V) input gives (B,)). A ``-inf`` entry has
    probability 0 and is never drawn.

    ``generator``: a ``torch.Generator`` (use it for every draw), an int (a seed: make
    ``torch.Generator().manual_seed(seed)`` and use that), or None (torch's global
    generator). The same seed must give the same tokens: the graders pass seeds, since
    a Generator cannot travel to the sandbox your code runs in. ``torch.multinomial``
    takes ``generator=``.
    """
    raise NotImplementedError


def generate(
    step_fn: StepFn,
    prompt_ids: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    generator: torch.Generator | int | None = None,
) -> torch.Tensor:
    """Sample ``max_new_tokens`` tokens after each prompt, one step at a time.

    step_fn(ids) takes the sequences so far, ids (B, L) int64, and returns the logits of
    the next token (B, V) (``NGramLM`` below is one). prompt_ids: (B, L) int64, L >= 1.
    Returns (B, L + max_new_tokens) int64: the prompts, then the new tokens.

    Each step, for the whole batch at once:

    1. ``logits = step_fn(ids)``, with ``ids`` everything so far (prompt included):
       call step_fn ONCE per step, never per row;
    2. your ``repetition_penalty(logits, ids, repetition_penalty)`` (skip it at 1.0):
       the prompt's tokens count;
    3. your ``apply_temperature``, then ``top_k_filter`` (when top_k is not None), then
       ``top_p_filter`` (when top_p is not None), in that order;
    4. your ``sample`` with the generator, and append the tokens.

    ``generator`` as in ``sample``; an int seed makes ONE generator for the whole call,
    so the same seed gives the same text. Greedy decoding is ``top_k=1``.
    (Inside this function the name ``repetition_penalty`` is the float parameter: call
    the function as ``_repetition_penalty``, the alias defined under it.)
    """
    raise NotImplementedError


# --- searching ---------------------------------------------------------------------


def beam_search(
    step_fn: StepFn, bos: int, eos: int, beam_width: int, max_len: int, length_penalty: float = 1.0
) -> tuple[list[int], float]:
    """The most likely continuation of ``[bos]`` that a beam of ``beam_width`` finds.

    A hypothesis is ``[bos]`` followed by the tokens it generated; its log-probability
    is the sum of log_softmax(step_fn(...)) of those tokens. Step by step, for
    t = 1 .. max_len:

    1. extend every live hypothesis by every token of the vocabulary (eos included),
       with ONE call of step_fn on all live hypotheses at once ((n_live, t) ids);
    2. keep the ``beam_width`` candidates with the highest log-probability (the raw sum,
       not normalised), wherever they come from (all of them when there are fewer);
    3. a kept candidate that ends with ``eos`` is finished; the others are live for the
       next step. At t = max_len every kept candidate is finished, eos or not.

    Stop when no hypothesis is live (or after max_len steps), and return the finished
    hypothesis with the highest score

        score = log_prob / n ** length_penalty

    where n is the number of GENERATED tokens (eos included, bos not). length_penalty = 0
    ranks by log-probability; larger values favour longer hypotheses (log-probs are
    negative). Returns ``(tokens, score)``: the generated tokens as a list of ints
    (bos excluded, eos included when it was emitted) and the score as a float.

    With beam_width = 1 this is greedy decoding that stops at eos; with a beam at least
    V ** max_len wide nothing is ever dropped, and the answer is the best of all
    possible sequences (the tests check both). Ties in scores never occur in the tests.
    """
    raise NotImplementedError


# --- given: a tiny language model to decode from (keep as it is) -------------------


class NGramLM:
    """A language model whose next-token logits depend on the last n - 1 tokens only.

    ``NGramLM(table, pad=0)``: ``table`` is a float tensor (or nested list) of shape
    (V,) * n. For n = 2 (a bigram model) ``table[a]`` is the logits row of the token
    after ``a``; for n = 3 ``table[a, b]`` the row after ``a, b``; for n = 1 the same row
    always. ``lm(ids)`` with ids (B, L) int64 (a 1-D (L,) is one row) returns (B, V)
    logits in the table's dtype, a new tensor. A sequence shorter than n - 1 tokens is
    read as if left-padded with ``pad``.

    ``lm.calls`` counts the calls and ``lm.rows`` the rows they asked for in total
    (how many times it ran), ``lm.vocab_size`` is V.
    """

    def __init__(self, table, pad: int = 0):
        table = torch.as_tensor(table)
        if not table.is_floating_point() or table.dim() < 1:
            raise ValueError("NGramLM: table must be a float tensor of shape (V,) * n")
        if any(size != table.shape[-1] for size in table.shape):
            raise ValueError(f"NGramLM: table shape {tuple(table.shape)} is not (V,) * n")
        self.table = table
        self.n = table.dim()
        self.vocab_size = table.shape[-1]
        self.pad = int(pad)
        self.calls = 0
        self.rows = 0

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        ids = torch.as_tensor(ids, dtype=torch.long)
        if ids.dim() == 1:
            ids = ids[None]
        if ids.dim() != 2:
            raise ValueError(f"NGramLM: ids must be (B, L), got shape {tuple(ids.shape)}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"NGramLM: ids must be in [0, {self.vocab_size})")
        self.calls += 1
        self.rows += ids.shape[0]
        context = self.n - 1
        if context == 0:
            return self.table.expand(ids.shape[0], -1).clone()
        if ids.shape[1] < context:
            padding = torch.full((ids.shape[0], context - ids.shape[1]), self.pad, dtype=torch.long)
            ids = torch.cat([padding, ids], dim=1)
        return self.table[tuple(ids[:, -context:].unbind(dim=1))].clone()
