"""Support for exercise 3.2 (Decoding and sampling): what its public tests, graders,
notebook and `llmkit show` share. It ships to learners, so it holds no decoder: only
closed forms, written as definitions over every pair of tokens (quadratic in the
vocabulary: fine for the tests' dozen tokens, hopeless for 50 257), exhaustive
enumerations of tiny models, the statistics that compare your samples with the law they
must follow, and the named mistakes, each as what it returns.

* :func:`temperature_oracle`, :func:`top_k_oracle`, :func:`top_p_oracle`,
  :func:`penalty_oracle` — the filters as definitions: a token's rank is how many
  tokens beat it, its "mass before" the probability of those that beat it.
* :func:`filter_case`, :func:`tied_case`, :func:`penalty_case` and :func:`draw_*` —
  the inputs public tests and graders draw with hypothesis.
* :func:`check_filtered` — a filter's output against the expected one; on failure the
  misconceptions are compared tie-agnostically (which of two tied tokens survives is
  not the mistake).
* :func:`table_logits`, :func:`greedy_tokens`, :func:`generate_law` — what ``generate``
  must produce on an ``NGramLM`` table: the greedy path, and the exact law of the first
  new tokens (an enumeration of every continuation).
* :func:`best_sequence`, :func:`greedy_until_eos` — beam search's answers when the beam
  drops nothing (every sequence enumerated) and when it is 1 wide.
* :func:`counts_problem` — a chi-square test of counts against a law.
* :data:`MISCONCEPTIONS`, :func:`figure`.
"""

from __future__ import annotations

import itertools
import math

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
    as_plain_tensor,
    assert_close,
    batch_shapes,
)

ALPHA = 1e-6  # significance of every statistical check: a correct sampler fails one about once a million
MIN_EXPECTED = 5.0  # chi-square cells expected fewer times than this are merged into the largest cell
NEG_INF = float("-inf")

# --- the filters as definitions (quadratic in V) ------------------------------------


def _beaten_by(values: torch.Tensor) -> torch.Tensor:
    """(..., V, V) bool: entry [i, j] is True when token j's value is strictly above token i's."""
    return values[..., None, :] > values[..., :, None]


def rank(values: torch.Tensor) -> torch.Tensor:
    """How many tokens of the row have a strictly larger value: 0 for the best (ties share a rank)."""
    return _beaten_by(values).sum(-1)


def mass_before(logits: torch.Tensor) -> torch.Tensor:
    """The probability (float64) of the tokens strictly more probable than each token."""
    probs = torch.softmax(logits.to(torch.float64), dim=-1)
    return (_beaten_by(probs) * probs[..., None, :]).sum(-1)


def temperature_oracle(logits: torch.Tensor, t: float) -> torch.Tensor:
    return logits / t


def top_k_oracle(logits: torch.Tensor, k: int, min_keep: int = 1) -> torch.Tensor:
    """Keep a token when fewer than max(k, min_keep) tokens have a larger logit: that is
    'logit >= the k-th largest', ties with the k-th value included."""
    return logits.masked_fill(rank(logits) >= max(k, min_keep), NEG_INF)


def top_p_oracle(logits: torch.Tensor, p: float, min_keep: int = 1) -> torch.Tensor:
    """Keep a token when the mass of the tokens more probable than it is < p, or when it
    is among the ``min_keep`` most probable (fewer than min_keep tokens beat it)."""
    probs = torch.softmax(logits.to(torch.float64), dim=-1)
    keep = (mass_before(logits) < p) & (probs > 0) | (rank(probs) < min_keep)
    return logits.masked_fill(~keep, NEG_INF)


def occurrences(input_ids: torch.Tensor, vocab: int) -> torch.Tensor:
    """(B, V) int64: how many times each id occurs in each row of ``input_ids`` (B, L)."""
    return (input_ids[..., :, None] == torch.arange(vocab)).sum(-2)


def penalty_oracle(logits: torch.Tensor, input_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """Each token that occurs in the row: x * penalty if x < 0, else x / penalty."""
    seen = occurrences(input_ids, logits.shape[-1]) > 0
    return torch.where(seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)


# --- inputs the public tests and graders draw ---------------------------------------


@st.composite
def filter_case(draw_st, max_vocab: int = 12, max_dims: int = 2, with_inf: bool = True):
    """(shape, dtype, scale, n_inf, seed): logits of ``shape`` = (*batch, V), normals times
    ``scale``, with up to ``n_inf`` entries per row already -inf (never the whole row)."""
    shape = (*draw_st(batch_shapes(max_dims=max_dims)), draw_st(st.integers(1, max_vocab)))
    n_inf = draw_st(st.integers(0, max(0, shape[-1] - 1))) if with_inf else 0
    scale = draw_st(st.sampled_from([0.3, 1.0, 2.5, 4.0]))
    return shape, draw_st(FLOAT_DTYPES), scale, n_inf, draw_st(SEEDS)


def draw_logits(case) -> torch.Tensor:
    """The logits of a :func:`filter_case`."""
    shape, dtype, scale, n_inf, seed = case
    rng = Draw(seed)
    logits = rng.tensor(*shape, dtype=dtype, scale=scale)
    if n_inf:
        order = torch.rand(shape, generator=rng.generator).argsort(dim=-1)
        logits = logits.masked_fill(order < n_inf, NEG_INF)  # n_inf random entries per row
    return logits


@st.composite
def tied_case(draw_st, max_vocab: int = 10):
    """(shape, dtype, levels, seed): logits that take only ``levels`` integer values, so
    most rows hold ties, at the k-th value too."""
    shape = (*draw_st(batch_shapes(max_dims=1, max_size=4)), draw_st(st.integers(2, max_vocab)))
    return shape, draw_st(FLOAT_DTYPES), draw_st(st.integers(1, 4)), draw_st(SEEDS)


def draw_tied_logits(case) -> torch.Tensor:
    shape, dtype, levels, seed = case
    return torch.as_tensor(Draw(seed).integers(0, levels, size=shape)).to(dtype)


@st.composite
def penalty_case(draw_st, max_vocab: int = 10, max_len: int = 8):
    """(B, V, L, dtype, penalty, seed) for ``repetition_penalty``: ids drawn from a few
    tokens so that most rows repeat some, logits with negatives, positives and zeros."""
    return (
        draw_st(st.integers(1, 3)),
        draw_st(st.integers(1, max_vocab)),
        draw_st(st.integers(0, max_len)),
        draw_st(FLOAT_DTYPES),
        draw_st(st.sampled_from([0.5, 0.8, 1.0, 1.3, 2.0, 3.7])),
        draw_st(SEEDS),
    )


def draw_penalty_inputs(case) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (B, V), input_ids (B, L)) of a :func:`penalty_case`."""
    b, v, length, dtype, _, seed = case
    rng = Draw(seed)
    logits = rng.tensor(b, v, dtype=dtype, scale=2.0)
    logits = logits.masked_fill(rng.bool_mask(b, v, p_true=0.15), 0.0)  # some exact zeros
    few = max(1, (v + 1) // 2)  # ids from half the vocabulary: repeats are the rule
    ids = torch.as_tensor(rng.integers(0, few, size=(b, length)), dtype=torch.long)
    return logits, ids


# --- comparing a filter's output ----------------------------------------------------


def _same_sorted(actual: torch.Tensor, candidate) -> bool:
    """Whether the rows hold the same values once sorted: which of two tied tokens
    survives does not matter for telling mistakes apart."""
    candidate = as_plain_tensor(candidate)
    if candidate.shape != actual.shape or candidate.dtype != actual.dtype:
        return False
    try:
        assert_close(actual.sort(dim=-1).values, candidate.sort(dim=-1).values)
    except CheckFailure:
        return False
    return True


def check_filtered(actual, expected, *, name: str, hint: str | None = None, suspects=None) -> None:
    """``actual`` equals ``expected`` (kept entries exactly, -inf where filtered); on
    failure the first misconception whose output holds the same values row by row
    (ties in any order) opens the message."""
    try:
        assert_close(actual, expected, name=name, hint=hint)
    except CheckFailure as failure:
        if suspects is None:
            raise
        actual_t = as_plain_tensor(actual, name)
        diagnosis = suspects.first_match(lambda value: _same_sorted(actual_t, value))
        if diagnosis is None:
            raise
        raise CheckFailure(f"{diagnosis}\n{failure}") from None


def kept_summary(logits: torch.Tensor, filtered) -> str:
    """The first row of logits, its probabilities and which entries survived, for messages."""
    row = logits.reshape(-1, logits.shape[-1])[0]
    kept = as_plain_tensor(filtered).reshape(-1, logits.shape[-1])[0] > NEG_INF
    probs = torch.softmax(row.to(torch.float64), -1)
    return (
        f"first row: logits {_fmt(row)}, probabilities {_fmt(probs)}, "
        f"kept {[int(i) for i in kept.nonzero().flatten()]}"
    )


def _fmt(values) -> str:
    return "[" + ", ".join(f"{float(v):.3g}" for v in values) + "]"


# --- generation on an NGramLM table ---------------------------------------------------


def table_logits(table: torch.Tensor, seq: list[int], pad: int = 0) -> torch.Tensor:
    """The logits row ``NGramLM(table, pad)`` gives after the tokens ``seq``."""
    context = table.dim() - 1
    if context == 0:
        return table
    padded = [pad] * max(0, context - len(seq)) + list(seq)
    return table[tuple(padded[-context:])]


def random_table(vocab: int, seed: int, n: int = 2, scale: float = 2.0, dtype=torch.float64):
    """A random NGramLM table: (V,) * n normals times ``scale``."""
    return Draw(seed).tensor(*(vocab,) * n, dtype=dtype, scale=scale)


def greedy_tokens(table, prompt: torch.Tensor, steps: int, penalty: float = 1.0, penalise_prompt=True):
    """What ``generate(NGramLM(table), prompt, steps, top_k=1, repetition_penalty=penalty)``
    returns, as a list of rows: each prompt row extended by the argmax of its penalised
    logits, step by step.
    ``penalise_prompt=False`` is a mistake (see MISCONCEPTIONS)."""
    rows = []
    for row in prompt.tolist():
        seq = list(row)
        for _ in range(steps):
            logits = table_logits(table, seq)[None]
            seen = seq if penalise_prompt else seq[len(row) :]
            if penalty != 1.0 and seen:
                logits = penalty_oracle(logits, torch.tensor([seen]), penalty)
            seq.append(int(logits[0].argmax()))
        rows.append(seq)
    return rows


def _next_law(table, seq, n_prompt, settings, temperature_last=False, penalise_prompt=True):
    t, k, p, penalty = (settings.get(key) for key in ("temperature", "top_k", "top_p", "repetition_penalty"))
    logits = table_logits(table, seq).to(torch.float64)[None]
    seen = seq if penalise_prompt else seq[n_prompt:]
    if penalty not in (None, 1.0) and seen:
        logits = penalty_oracle(logits, torch.tensor([seen]), penalty)
    if not temperature_last:
        logits = logits / (t or 1.0)
    if k is not None:
        logits = top_k_oracle(logits, k)
    if p is not None:
        logits = top_p_oracle(logits, p)
    if temperature_last:
        logits = logits / (t or 1.0)
    return torch.softmax(logits[0], dim=-1)


def generate_law(
    table, prompt: list[int], steps: int, *, temperature_last=False, penalise_prompt=True, **settings
):
    """The exact law (float64, V ** steps cells) of the first ``steps`` tokens that
    ``generate(NGramLM(table), prompt, steps, **settings)`` draws after ``prompt``: cell
    ``t1 * V + t2`` is P(t1, t2). Every continuation is enumerated. The keyword flags
    give two mistakes' laws (see MISCONCEPTIONS)."""
    vocab = table.shape[-1]
    law = torch.zeros(vocab**steps, dtype=torch.float64)
    cache: dict[tuple[int, ...], torch.Tensor] = {}
    for cell, continuation in enumerate(itertools.product(range(vocab), repeat=steps)):
        prob = 1.0
        for i, token in enumerate(continuation):
            prefix = tuple(continuation[:i])
            if prefix not in cache:
                cache[prefix] = _next_law(
                    table,
                    list(prompt) + list(prefix),
                    len(prompt),
                    settings,
                    temperature_last,
                    penalise_prompt,
                )
            prob *= float(cache[prefix][token])
            if prob == 0.0:
                break
        law[cell] = prob
    return law


def sequence_cells(new_tokens: torch.Tensor, vocab: int) -> torch.Tensor:
    """Each row of new tokens (N, steps) as its cell t1 * V + t2 + ... of :func:`generate_law`."""
    weights = vocab ** torch.arange(new_tokens.shape[1] - 1, -1, -1)
    return (new_tokens * weights).sum(-1)


# --- beam search on an NGramLM table --------------------------------------------------


def _sequence_logprob(table, bos: int, tokens: tuple[int, ...]) -> float:
    seq, total = [bos], 0.0
    for token in tokens:
        total += float(torch.log_softmax(table_logits(table, seq).to(torch.float64), -1)[token])
        seq.append(token)
    return total


def best_sequence(
    table, bos: int, eos: int, max_len: int, length_penalty: float = 1.0, extra_length: int = 0
):
    """(tokens, score): the best of ALL sequences beam search can finish, by enumeration:
    n < max_len tokens ending with eos (and no eos before), or max_len tokens with no eos
    before the last; score = log-prob / (n + extra_length) ** length_penalty.
    ``extra_length=1`` is a mistake (the bos counted, see MISCONCEPTIONS)."""
    vocab = table.shape[-1]
    others = [v for v in range(vocab) if v != eos]
    best = None
    for n in range(1, max_len + 1):
        lasts = range(vocab) if n == max_len else [eos]
        for head in itertools.product(others, repeat=n - 1):
            for last in lasts:
                tokens = (*head, last)
                score = _sequence_logprob(table, bos, tokens) / (n + extra_length) ** length_penalty
                if best is None or score > best[1]:
                    best = (list(tokens), score)
    return best


def greedy_until_eos(table, bos: int, eos: int, max_len: int, length_penalty: float = 1.0):
    """(tokens, score) of greedy decoding: the argmax token each step, stopping after eos
    or after max_len tokens. Beam search 1 wide must return it."""
    seq = [bos]
    while len(seq) - 1 < max_len:
        seq.append(int(table_logits(table, seq).argmax()))
        if seq[-1] == eos:
            break
    tokens = tuple(seq[1:])
    return list(tokens), _sequence_logprob(table, bos, tokens) / len(tokens) ** length_penalty


def beam_problem(got, want, rtol: float = 1e-6) -> str | None:
    """None when beam_search's ``got`` = (tokens, score) is ``want``, else what differs."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"expected a (tokens, score) pair, got {str(got)[:100]}"
    tokens, score = got
    try:
        tokens, score = [int(t) for t in tokens], float(score)
    except (TypeError, ValueError):
        return f"expected (list of ints, float), got {str(got)[:100]}"
    if tokens != list(want[0]):
        return f"tokens {tokens}, expected {list(want[0])} (score {want[1]:.6g})"
    if not math.isclose(score, want[1], rel_tol=rtol, abs_tol=rtol):
        return f"the right tokens {tokens}, but score {score:.8g}, expected {want[1]:.8g}"
    return None


def check_beam(got, want, *, name: str, hint: str | None = None, suspects=None) -> None:
    problem = beam_problem(got, want)
    if problem is None:
        return
    diagnosis = suspects.first_match(lambda value: beam_problem(got, value) is None) if suspects else None
    message = f"{name}: {problem}"
    raise CheckFailure(f"{diagnosis}\n{message}" if diagnosis else message, hint=hint)


# --- statistics -------------------------------------------------------------------------


def pvalue_chisquare(observed: torch.Tensor, expected: torch.Tensor) -> float:
    """Pearson's chi-square test of ``observed`` counts against ``expected`` ones (same
    total), len - 1 degrees of freedom (as scipy.stats.chisquare)."""
    observed, expected = observed.to(torch.float64), expected.to(torch.float64)
    statistic = ((observed - expected) ** 2 / expected).sum()
    dof = torch.tensor((observed.numel() - 1) / 2, dtype=torch.float64)
    return float(torch.special.gammaincc(dof, statistic / 2))


def counts_problem(counts: torch.Tensor, law: torch.Tensor, alpha: float = ALPHA, pvalue=None) -> str | None:
    """None when ``counts`` could be a multinomial sample of ``law``, else why not. A cell
    of probability 0 must never be hit; cells expected fewer than MIN_EXPECTED times are
    merged into the largest. ``pvalue(observed, expected)`` defaults to
    :func:`pvalue_chisquare` (the graders pass scipy's)."""
    counts = torch.as_tensor(counts).to(torch.float64)
    law = law.to(torch.float64) / law.sum()
    impossible = (law <= 1e-15) & (counts > 0)
    if impossible.any():
        cell = int(impossible.nonzero()[0])
        return f"outcome {cell} came {int(counts[cell])} times but has probability {float(law[cell]):.3g}"
    expected = counts.sum() * law
    big = expected >= MIN_EXPECTED
    if int(big.sum()) <= 1:
        return None
    obs, exp = counts[big].clone(), expected[big].clone()
    largest = int(exp.argmax())
    obs[largest] += counts[~big].sum()
    exp[largest] += expected[~big].sum()
    value = (pvalue or pvalue_chisquare)(obs, exp)
    if value >= alpha:
        return None
    return (
        f"frequencies {_fmt(counts / counts.sum())}, expected {_fmt(law)}: "
        f"chi-square p-value {value:.2g} < {alpha:g}"
    )


def check_counts(counts, law, *, name: str, hint: str | None = None, suspects=None, pvalue=None) -> None:
    """``counts`` against ``law`` (:func:`counts_problem`); on failure the first
    misconception whose law the counts fit is named."""
    problem = counts_problem(counts, law, pvalue=pvalue)
    if problem is None:
        return
    diagnosis = (
        suspects.first_match(lambda other: counts_problem(counts, other, pvalue=pvalue) is None)
        if suspects
        else None
    )
    message = f"{name}: {problem}"
    raise CheckFailure(f"{diagnosis}\n{message}" if diagnosis else message, hint=hint)


# --- misconceptions: what each known mistake returns ----------------------------------


def _top_p_without_crossing(logits, p, min_keep=1):
    """Keeps a token only when the mass up to and INCLUDING it is < p."""
    probs = torch.softmax(logits.to(torch.float64), dim=-1)
    keep = (mass_before(logits) + probs < p) | (rank(probs) < min_keep)
    return logits.masked_fill(~keep, NEG_INF)


def _top_p_vocabulary_order(logits, p, min_keep=1):
    """The mass before each token summed in vocabulary order, not in order of probability."""
    probs = torch.softmax(logits.to(torch.float64), dim=-1)
    v = probs.shape[-1]
    earlier = torch.ones(v, v, dtype=torch.bool).tril(diagonal=-1)  # [i, j]: j comes before i
    before = (earlier * probs[..., None, :]).sum(-1)
    keep = (before < p) | (torch.arange(v) < min_keep)
    return logits.masked_fill(~keep, NEG_INF)


def _top_k_exactly_k(logits, k, min_keep=1):
    """Exactly max(k, min_keep) tokens, ties at the k-th value cut (by position)."""
    v = logits.shape[-1]
    k = min(max(k, min_keep), v)
    position = torch.arange(v)
    tie_before = (logits[..., None, :] == logits[..., :, None]) & (position[None, :] < position[:, None])
    return logits.masked_fill(rank(logits) + tie_before.sum(-1) >= k, NEG_INF)


def _penalty_always_divides(logits, input_ids, penalty):
    seen = occurrences(input_ids, logits.shape[-1]) > 0
    return torch.where(seen, logits / penalty, logits)


def _penalty_per_occurrence(logits, input_ids, penalty):
    count = occurrences(input_ids, logits.shape[-1]).to(logits.dtype)
    factor = torch.as_tensor(penalty, dtype=logits.dtype) ** count
    return torch.where(logits < 0, logits * factor, logits / factor)


MISCONCEPTIONS = Misconceptions(
    "exercises/section3/README.md",
    Misconception(
        "top_p_drops_crossing_token",
        "top-p drops the token that crosses p",
        "keep a token while the mass ranked BEFORE it is < p: the token that takes the total to p "
        "or beyond is kept (probs [0.5, 0.3, 0.2], p = 0.6 keep two tokens, not one)",
        readme="3.2 — Top-p keeps the token that crosses p",
        variants={"top_p_filter": _top_p_without_crossing},
    ),
    Misconception(
        "top_p_unsorted_cumsum",
        "top-p summed in vocabulary order",
        "the nucleus is the most PROBABLE tokens: sort the probabilities (descending) before "
        "the cumulative sum, then scatter the decision back to vocabulary order",
        readme="3.2 — Top-p keeps the token that crosses p",
        variants={"top_p_filter": _top_p_vocabulary_order},
    ),
    Misconception(
        "top_k_drops_ties",
        "top-k keeps exactly k tokens",
        "keep every token whose logit is >= the k-th largest value (logits >= topk(...).values[..., -1:]): "
        "ties with the k-th value all survive",
        readme="3.2 — Top-k and ties",
        variants={"top_k_filter": _top_k_exactly_k},
    ),
    Misconception(
        "penalty_always_divides",
        "the repetition penalty always divides",
        "dividing a NEGATIVE logit by penalty > 1 raises it: multiply logits < 0, divide the others",
        readme="3.2 — The repetition penalty",
        variants={"repetition_penalty": _penalty_always_divides},
    ),
    Misconception(
        "penalty_per_occurrence",
        "the repetition penalty applied once per occurrence",
        "penalise each DISTINCT id once, however many times it occurs (gather/scatter on the ids, "
        "not a loop that applies it again for every repeat)",
        readme="3.2 — The repetition penalty",
        variants={"repetition_penalty": _penalty_per_occurrence},
    ),
    Misconception(
        "penalty_ignores_prompt",
        "the repetition penalty sees only the generated tokens",
        "pass the whole sequence so far, prompt included, to repetition_penalty (as transformers does)",
        readme="3.2 — The repetition penalty",
        variants={
            "greedy_tokens": lambda table, prompt, steps, penalty=1.0: greedy_tokens(
                table, prompt, steps, penalty, penalise_prompt=False
            ),
            "generate_law": lambda table, prompt, steps, **settings: generate_law(
                table, prompt, steps, penalise_prompt=False, **settings
            ),
        },
    ),
    Misconception(
        "temperature_after_filters",
        "temperature applied after top-k/top-p",
        "the order is penalty -> temperature -> top-k -> top-p: top-p must measure the mass of the "
        "TEMPERED distribution",
        readme="3.2 — The order of the filters",
        variants={
            "generate_law": lambda table, prompt, steps, **settings: generate_law(
                table, prompt, steps, temperature_last=True, **settings
            )
        },
    ),
    Misconception(
        "modifies_input",
        "a filter writes into its input",
        "return a new tensor (masked_fill, not masked_fill_ or logits[mask] = ...): the caller may "
        "still need the logits it passed",
        readme="3.2 — Inputs are read-only",
    ),
    Misconception(
        "generator_ignored",
        "sampling ignores the generator",
        "pass the generator to every random call (torch.multinomial(..., generator=g)); an int is a "
        "seed: torch.Generator().manual_seed(seed)",
        readme="3.2 — Seeds and generators",
    ),
    Misconception(
        "length_penalty_counts_prompt",
        "the length penalty counts bos",
        "normalise by the number of GENERATED tokens (eos included, bos not): "
        "score = log_prob / n ** length_penalty",
        readme="3.2 — Beam search and the length penalty",
        variants={
            "beam_search": lambda table, bos, eos, max_len, length_penalty=1.0: best_sequence(
                table, bos, eos, max_len, length_penalty, extra_length=1
            )
        },
    ),
    Misconception(
        "top_k_full_sort",
        "top-k sorts the whole vocabulary",
        "torch.topk(logits, k) finds the k-th value without sorting all 50 257 logits",
        readme="3.2 — Speed",
        kind="speed",
    ),
)


def call_untouched(fn, *args, name: str, **kwargs):
    """``fn(*args, **kwargs)``, failing as ``modifies_input`` when the call changed one of
    its tensor arguments in place. (Under ``llmkit grade`` the sandbox itself refuses a
    call that writes into its inputs.)"""
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    before = [t.clone() for t in tensors]
    out = fn(*args, **kwargs)
    for t, b in zip(tensors, before):
        if not torch.equal(t, b):
            raise MISCONCEPTIONS.failure(
                "modifies_input", f"{name} changed the tensor it was given (a {tuple(t.shape)} {t.dtype})"
            )
    return out


# --- the figure ---------------------------------------------------------------------------


def figure(impl) -> Figure:
    """Your filters, sampler and beam search at work: one 24-token distribution at three
    temperatures, the tokens your top-k and top-p keep, 4 000 of your samples from the
    top-p distribution against its probabilities, and the length of the answers your
    beam search returns as the length penalty grows, for three beam widths."""
    logits = Draw(11).tensor(24, dtype=torch.float64, scale=1.6).sort(descending=True).values
    x = torch.arange(24)
    fig, axes = new_figure(15.0, 3.6, ncols=4)

    ax = axes[0]
    for t, color in ((0.5, "#4477aa"), (1.0, "#228833"), (2.0, "#ee7733")):
        probs = torch.softmax(torch.as_tensor(impl.apply_temperature(logits, t)), -1)
        ax.plot(x.numpy(), probs.numpy(), "o-", ms=3, color=color, label=f"t = {t}")
    ax.set_xlabel("token (by probability)")
    ax.set_ylabel("probability")
    ax.set_title("apply_temperature", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[1]
    probs = torch.softmax(logits, -1)
    kept_k = torch.as_tensor(impl.top_k_filter(logits, 5)) > NEG_INF
    kept_p = torch.as_tensor(impl.top_p_filter(logits, 0.8)) > NEG_INF
    colors = ["#4477aa" if p else ("#88ccee" if k else "#cccccc") for k, p in zip(kept_k, kept_p)]
    ax.bar(x.numpy(), probs.numpy(), color=colors)
    ax.plot(x.numpy(), torch.where(kept_k, probs, torch.nan).numpy(), "kv", ms=4, label="kept by top_k=5")
    cumulative = probs.cumsum(0)
    ax.plot(x.numpy(), cumulative.numpy(), "-", color="#ee7733", lw=1, label="cumulative probability")
    ax.axhline(0.8, color="#ee7733", ls=":", lw=1)
    ax.set_xlabel("token (by probability)")
    ax.set_title(
        f"top_p=0.8 keeps {int(kept_p.sum())} (dark), top_k=5 keeps {int(kept_k.sum())}", fontsize=10
    )
    ax.legend(fontsize=8)

    ax = axes[2]
    filtered = torch.as_tensor(impl.top_p_filter(logits, 0.8))
    n = 4000
    draws = torch.as_tensor(impl.sample(filtered.expand(n, -1).clone(), generator=5))
    freq = torch.bincount(draws.flatten().long(), minlength=24)[:24].double() / n
    target = torch.softmax(filtered, -1)
    ax.bar(x.numpy() - 0.2, target.numpy(), width=0.4, color="#4477aa", label="softmax(top-p logits)")
    ax.bar(x.numpy() + 0.2, freq.numpy(), width=0.4, color="#ee7733", label=f"your {n} samples")
    ax.set_xlim(-0.8, max(int(kept_p.sum()), 1) + 1.5)
    ax.set_xlabel("token")
    ax.set_title("sample", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[3]
    vocab, eos, max_len, models = 5, 4, 10, 8
    penalties = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
    tables = [random_table(vocab, 200 + seed, scale=1.5) for seed in range(models)]
    for width, color in ((1, "#4477aa"), (2, "#228833"), (8, "#ee7733")):
        lengths = []
        for penalty in penalties:
            found = [impl.beam_search(impl.NGramLM(t), 0, eos, width, max_len, penalty) for t in tables]
            lengths.append(sum(len(tokens) for tokens, _ in found) / models)
        label = "beam 1 (greedy)" if width == 1 else f"beam {width}"
        ax.plot(penalties, lengths, "o-", ms=4, color=color, label=label)
    ax.set_ylim(0, max_len + 0.5)
    ax.set_xlabel("length_penalty")
    ax.set_ylabel(f"mean answer length (max_len={max_len})")
    ax.set_title(f"beam_search on {models} random bigram models", fontsize=10)
    ax.legend(fontsize=8)
    return png(fig), (
        "Your decoding functions on toy distributions: temperature sharpens or flattens, top-k and "
        "top-p keep the head of the distribution, your samples follow the filtered probabilities, "
        "and a wide beam finds short likely answers that the length penalty lengthens"
    )
