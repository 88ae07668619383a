"""Hidden graders for exercise 3.2 (Decoding and sampling): 20 points.

Oracles: Hugging Face transformers' ``TemperatureLogitsWarper``, ``TopKLogitsWarper``,
``TopPLogitsWarper`` and ``RepetitionPenaltyLogitsProcessor`` for the filters, for
greedy generation and, by enumeration of every continuation, for the exact law of the
first tokens ``generate`` draws; ``scipy.stats.chisquare`` for every statistical check
(significance 1e-6); every sequence of a tiny model for an exhaustive beam, greedy
decoding for a beam one wide, and ``decoding_oracle.beam_search_oracle`` for beams in
between. Cheap exact tests come first, the statistical ones and the speed last. Every
draw is seeded (fixed seeds, or seeds drawn from the run's), so a verdict replays.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from llmkit.testing import (
    SEEDS,
    CheckFailure,
    as_plain_tensor,
    assert_close,
    assert_speed,
    check_equal,
    load_oracle,
    load_support,
)

pytestmark = pytest.mark.exercise("3.2")
support = load_support("3.2")
oracle = load_oracle("3.2")
mistakes = support.MISCONCEPTIONS
NEG_INF = float("-inf")

# --- transformers' processors on (..., V) logits ------------------------------------------


def _rows(fn, logits: torch.Tensor) -> torch.Tensor:
    """A transformers processor (it wants (B, V)) applied to (..., V) logits."""
    return fn(logits.reshape(-1, logits.shape[-1])).reshape(logits.shape)


def hf_temperature(logits, t):
    return _rows(lambda x: TemperatureLogitsWarper(float(t))(None, x), logits)


def hf_top_k(logits, k, min_keep=1):
    return _rows(lambda x: TopKLogitsWarper(k, min_tokens_to_keep=min_keep)(None, x), logits)


def hf_top_p(logits, p, min_keep=1):
    return _rows(lambda x: TopPLogitsWarper(p, min_tokens_to_keep=min_keep)(None, x), logits)


def hf_penalty(logits, input_ids, penalty):
    return RepetitionPenaltyLogitsProcessor(float(penalty))(input_ids, logits.clone())


def scipy_pvalue(observed, expected) -> float:
    return float(chisquare(observed.numpy(), expected.numpy()).pvalue)


# --- inputs left alone (1 point) ----------------------------------------------------------


@pytest.mark.points(1)
def test_filters_leave_their_input_alone(impl, draw):
    logits = draw.tensor(4, 11, scale=2.0)
    ids = torch.as_tensor(draw.integers(0, 11, size=(4, 6)))
    support.call_untouched(impl.apply_temperature, logits, 0.7, name="apply_temperature")
    support.call_untouched(impl.top_k_filter, logits, 3, name="top_k_filter")
    support.call_untouched(impl.top_p_filter, logits, 0.6, name="top_p_filter")
    support.call_untouched(impl.repetition_penalty, logits, ids, 1.4, name="repetition_penalty")


# --- the filters against transformers (8 points: temperature 1, top-k 2, top-p 3, penalty 2) ---


@pytest.mark.points(1)
@settings(max_examples=25)
@given(case=support.filter_case(max_vocab=30, max_dims=3), t=st.floats(0.05, 20.0))
def test_temperature_matches_transformers(impl, case, t):
    logits = support.draw_logits(case)
    assert_close(
        impl.apply_temperature(logits, t),
        hf_temperature(logits, t),
        name=f"apply_temperature(logits {case[0]} {case[1]}, {t:.4g})",
        hint="logits / t, a new tensor of the same dtype",
    )
    for bad in (0.0, -0.5):
        with pytest.raises(ValueError):
            impl.apply_temperature(logits, bad)


@pytest.mark.points(2)
@settings(max_examples=40)
@given(
    case=st.one_of(support.filter_case(max_vocab=40, max_dims=3), support.tied_case(max_vocab=12)),
    k=st.integers(1, 45),
    min_keep=st.integers(1, 4),
)
def test_top_k_matches_transformers(impl, case, k, min_keep):
    logits = support.draw_tied_logits(case) if len(case) == 4 else support.draw_logits(case)
    support.check_filtered(
        impl.top_k_filter(logits, k, min_keep=min_keep),
        hf_top_k(logits, k, min_keep),
        name=f"top_k_filter(logits {tuple(logits.shape)} {logits.dtype}, k={k}, min_keep={min_keep}); "
        f"first row {support._fmt(logits.reshape(-1, logits.shape[-1])[0])}",
        hint="keep every token >= the max(k, min_keep)-th largest logit of its row (ties included)",
        suspects=mistakes.on("top_k_filter", logits, k, min_keep=min_keep),
    )
    for bad in (0, -2):
        with pytest.raises(ValueError):
            impl.top_k_filter(logits, bad)


@st.composite
def top_p_case(draw_st):
    """Logits of every kind (-inf entries, near-flat, peaked, 2 000 tokens wide), p and
    min_keep; ``after_top_k`` feeds transformers' top-k output in, as generate does."""
    kind = draw_st(st.sampled_from(["drawn", "flat", "peaked", "wide"]))
    if kind == "drawn":
        case = draw_st(support.filter_case(max_vocab=40, max_dims=3))
    else:
        shape = (draw_st(st.integers(1, 3)), 2000 if kind == "wide" else draw_st(st.integers(2, 30)))
        scale = {"flat": 0.01, "peaked": 8.0, "wide": 1.5}[kind]
        dtype = torch.float64 if kind == "wide" else draw_st(st.sampled_from([torch.float32, torch.float64]))
        case = (shape, dtype, scale, 0, draw_st(SEEDS))
    p = draw_st(st.one_of(st.floats(0.0, 0.995), st.sampled_from([0.0, 0.5, 0.9])))
    after_top_k = draw_st(st.one_of(st.none(), st.integers(1, 20)))
    return case, p, draw_st(st.integers(1, 4)), after_top_k


@pytest.mark.points(2)
@settings(max_examples=60)
@given(c=top_p_case())
def test_top_p_matches_transformers(impl, c):
    case, p, min_keep, after_top_k = c
    logits = support.draw_logits(case)
    if after_top_k is not None:
        logits = hf_top_k(logits, after_top_k)
    expected = hf_top_p(logits, p, min_keep)
    support.check_filtered(
        impl.top_p_filter(logits, p, min_keep=min_keep),
        expected,
        name=f"top_p_filter(logits {tuple(logits.shape)} {logits.dtype}, p={p:.6g}, min_keep={min_keep})"
        f"{'' if after_top_k is None else f' after top-k {after_top_k}'}; "
        + support.kept_summary(logits, expected),
        hint="rank by probability; keep a token when the mass ranked before it is < p; "
        "the min_keep most probable always stay",
        suspects=mistakes.on("top_p_filter", logits, p, min_keep=min_keep),
    )


@pytest.mark.points(1)
def test_top_p_edges(impl, draw):
    logits = draw.tensor(3, 17, scale=1.0)
    for p, min_keep in ((1.0, 1), (0.0, 1), (0.0, 3)):
        support.check_filtered(
            impl.top_p_filter(logits, p, min_keep=min_keep),
            hf_top_p(logits, p, min_keep),
            name=f"top_p_filter(logits (3, 17), p={p}, min_keep={min_keep})",
            hint="p = 1 keeps everything; p = 0 keeps the min_keep most probable tokens",
        )
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError):
            impl.top_p_filter(logits, bad)


@pytest.mark.points(2)
@settings(max_examples=40)
@given(case=support.penalty_case(max_vocab=30, max_len=20), penalty=st.floats(0.2, 4.0))
def test_repetition_penalty_matches_transformers(impl, case, penalty):
    logits, ids = support.draw_penalty_inputs(case)
    assert_close(
        impl.repetition_penalty(logits, ids, penalty),
        hf_penalty(logits, ids, penalty),
        name=f"repetition_penalty(logits {tuple(logits.shape)} {logits.dtype}, input_ids {ids.tolist()}, "
        f"{penalty:.4g})",
        hint="each distinct id of the row once: x * penalty where x < 0, x / penalty elsewhere",
        suspects=mistakes.on("repetition_penalty", logits, ids, penalty),
    )
    with pytest.raises(ValueError):
        impl.repetition_penalty(logits, ids, 0.0)


# --- sampling (2 points) --------------------------------------------------------------------


@pytest.mark.points(2)
def test_sample_follows_softmax_and_the_seed(impl, draw):
    row_a = torch.tensor([0.3, NEG_INF, 1.2, -0.4, NEG_INF, 0.9, 2.0, -1.5], dtype=torch.float64)
    row_b = draw.tensor(8, scale=3.0)
    n = 20000
    logits = torch.stack([row_a.float(), row_b]).repeat(n // 2, 1)  # rows a, b, a, b, ...
    seed = int(draw.integers(0, 2**31))
    draws = impl.sample(logits, generator=seed)
    if not (isinstance(draws, torch.Tensor) and draws.dtype == torch.int64 and draws.shape == (n,)):
        raise CheckFailure(
            f"sample((20000, 8) logits) must give a (20000,) int64 tensor, got {str(draws)[:80]}"
        )
    for name, row, got in (("row a (with -inf)", row_a, draws[0::2]), ("row b", row_b, draws[1::2])):
        support.check_counts(
            torch.bincount(got, minlength=8)[:8],
            torch.softmax(row.double(), -1),
            name=f"10 000 draws of sample() for {name}, logits {support._fmt(row)}",
            hint="torch.multinomial(softmax(logits), 1, generator=g), one draw per row",
            pvalue=scipy_pvalue,
        )
    shaped = impl.sample(draw.tensor(3, 2, 5, dtype=torch.float64), generator=seed)
    check_equal(
        (tuple(shaped.shape), str(shaped.dtype)),
        ((3, 2), "torch.int64"),
        name="sample of (3, 2, 5) float64 logits: shape and dtype",
    )
    one_hot = torch.full((50, 6), NEG_INF)
    one_hot[:, 4] = 0.0
    check_equal(
        impl.sample(one_hot, generator=seed).tolist(), [4] * 50, name="sample of rows with one finite logit"
    )
    again = impl.sample(logits, generator=seed)
    if not torch.equal(as_plain_tensor(again), draws):
        raise mistakes.failure(
            "generator_ignored", f"sample(logits, generator={seed}) twice gave different tokens"
        )
    if torch.equal(as_plain_tensor(impl.sample(logits, generator=seed + 1)), draws):
        raise CheckFailure(f"sample gave the same 20 000 tokens with the seeds {seed} and {seed + 1}")


# --- generation (3 points) ------------------------------------------------------------------


def hf_greedy(table, prompt: torch.Tensor, steps: int, penalty: float) -> list[list[int]]:
    """Greedy decoding on an NGramLM table with transformers' penalty, row by row."""
    rows = []
    for row in prompt.tolist():
        seq = list(row)
        for _ in range(steps):
            logits = support.table_logits(table, seq)[None]
            if penalty != 1.0:
                logits = hf_penalty(logits, torch.tensor([seq]), penalty)
            seq.append(int(logits[0].argmax()))
        rows.append(seq)
    return rows


# (table: vocabulary, order, seed), prompts, steps, penalty: penalties that change the path,
# with the prompts' tokens among the model's favourites
GREEDY_CASES = [
    ((6, 2, 2), [[0, 2, 2], [5, 1, 4], [3, 3, 3]], 8, 1.8),
    ((7, 3, 4), [[1, 6, 6, 1], [2, 0, 3, 5], [4, 4, 4, 4], [6, 5, 4, 3]], 8, 1.5),
    ((5, 2, 9), [[0, 1], [4, 2]], 6, 0.7),
]


@pytest.mark.points(1)
def test_greedy_generation_matches_transformers(impl):
    for (vocab, order, seed), prompt, steps, penalty in GREEDY_CASES:
        table = support.random_table(vocab, seed, n=order)
        prompt = torch.tensor(prompt)
        lm = impl.NGramLM(table)
        out = impl.generate(lm, prompt, steps, top_k=1, repetition_penalty=penalty, generator=0)
        check_equal(
            as_plain_tensor(out).tolist(),
            hf_greedy(table, prompt, steps, penalty),
            name=f"generate(NGramLM({vocab}-token {order}-gram), {prompt.tolist()}, {steps}, top_k=1, "
            f"repetition_penalty={penalty})",
            hint="the penalty sees the whole sequence so far (prompt included), then temperature, "
            "top-k, top-p, sample",
            suspects=mistakes.on("greedy_tokens", table, prompt, steps, penalty),
        )
        check_equal(
            int(lm.calls), steps, name=f"step_fn calls for {steps} new tokens (once per step, all rows)"
        )
    unchanged_prompt = impl.generate(impl.NGramLM(table), prompt, 0, generator=0)
    check_equal(
        as_plain_tensor(unchanged_prompt).tolist(), prompt.tolist(), name="generate(..., max_new_tokens=0)"
    )


def hf_law(table, prompt: list[int], steps: int, temperature, top_k, top_p, repetition_penalty):
    """The exact law of the first ``steps`` tokens, with transformers' processors, by
    enumerating every continuation (cell t1 * V + t2)."""
    vocab = table.shape[-1]
    law = torch.zeros(vocab**steps, dtype=torch.float64)

    def next_law(seq):
        ids = torch.tensor([seq])
        logits = support.table_logits(table, seq).to(torch.float64)[None]
        if repetition_penalty != 1.0:
            logits = hf_penalty(logits, ids, repetition_penalty)
        logits = TemperatureLogitsWarper(float(temperature))(ids, logits)
        if top_k is not None:
            logits = TopKLogitsWarper(top_k)(ids, logits)
        if top_p is not None:
            logits = TopPLogitsWarper(top_p)(ids, logits)
        return torch.softmax(logits[0], -1)

    first = next_law(list(prompt))
    for t1 in range(vocab):
        if steps == 1:
            law[t1] = first[t1]
            continue
        law[t1 * vocab : (t1 + 1) * vocab] = first[t1] * next_law([*prompt, t1])
    return law


# (vocabulary, table seed, prompt, settings): each filter changes the law, and in the
# first case the order of temperature and top-p changes it by a total variation of 0.47
LAW_CASES = [
    (6, 2, [1, 3, 3], dict(temperature=1.8, top_k=5, top_p=0.75, repetition_penalty=1.6)),
    (5, 3, [4, 0], dict(temperature=0.6, top_k=None, top_p=0.9, repetition_penalty=1.0)),
]


@pytest.mark.points(2)
def test_generate_samples_what_transformers_would(impl, draw):
    n, steps = 20000, 2
    for vocab, seed, prompt, options in LAW_CASES:
        table = support.random_table(vocab, seed)
        prompts = torch.tensor([prompt]).expand(n, -1).clone()
        run_seed = int(draw.integers(0, 2**31))
        out = as_plain_tensor(
            impl.generate(impl.NGramLM(table), prompts, steps, generator=run_seed, **options)
        )
        if out.shape != (n, len(prompt) + steps) or not torch.equal(out[:, : len(prompt)], prompts):
            raise CheckFailure(
                f"generate must return (prompts, new tokens): expected shape {(n, len(prompt) + steps)} "
                f"starting with the prompts, got {tuple(out.shape)}"
            )
        counts = torch.bincount(support.sequence_cells(out[:, len(prompt) :], vocab), minlength=vocab**steps)
        support.check_counts(
            counts,
            hf_law(table, prompt, steps, **options),
            name=f"the first two tokens of {n} generations after {prompt} with {options} "
            f"(outcome = {vocab} * first + second)",
            hint="order: repetition penalty (prompt included) -> temperature -> top-k -> top-p -> sample",
            suspects=mistakes.on("generate_law", table, prompt, steps, **options),
            pvalue=scipy_pvalue,
        )
        twice = [
            as_plain_tensor(
                impl.generate(impl.NGramLM(table), prompts[:500], steps, generator=run_seed, **options)
            )
            for _ in "ab"
        ]
        if not torch.equal(*twice):
            raise mistakes.failure(
                "generator_ignored",
                f"generate(500 prompts, ..., generator={run_seed}) twice gave different tokens",
            )


# --- beam search (4 points) --------------------------------------------------------------


@st.composite
def exhaustive_case(draw_st):
    """A tiny model (V in 2..3, order 1..3), bos, eos, max_len with V ** max_len <= 81."""
    vocab = draw_st(st.integers(2, 3))
    max_len = draw_st(st.integers(1, 4))
    return (
        vocab,
        draw_st(st.integers(1, 3)),
        draw_st(st.integers(0, vocab - 1)),
        draw_st(st.integers(0, vocab - 1)),
        max_len,
        draw_st(st.sampled_from([0.0, 0.5, 1.0, 2.0])),
        draw_st(SEEDS),
    )


@pytest.mark.points(2)
@settings(max_examples=20)
@given(case=exhaustive_case())
def test_an_exhaustive_beam_finds_the_best_sequence(impl, case):
    vocab, order, bos, eos, max_len, length_penalty, seed = case
    table = support.random_table(vocab, seed, n=order, scale=1.5)
    lm = impl.NGramLM(table)
    width = vocab**max_len
    support.check_beam(
        impl.beam_search(lm, bos, eos, width, max_len, length_penalty),
        support.best_sequence(table, bos, eos, max_len, length_penalty),
        name=f"beam_search(NGramLM({vocab}-token {order}-gram), bos={bos}, eos={eos}, beam_width={width}, "
        f"max_len={max_len}, length_penalty={length_penalty}) (a beam that drops nothing)",
        hint="score = log-prob / (generated tokens, eos included) ** length_penalty; eos ends a hypothesis",
        suspects=mistakes.on("beam_search", table, bos, eos, max_len, length_penalty),
    )
    calls = int(lm.calls)
    if calls > max_len:
        raise CheckFailure(f"beam_search called step_fn {calls} times for max_len={max_len}: once per step")


@pytest.mark.points(1)
@settings(max_examples=10)
@given(seed=SEEDS, eos_first=st.booleans(), length_penalty=st.sampled_from([0.0, 1.0]))
def test_a_beam_one_wide_is_greedy(impl, seed, eos_first, length_penalty):
    table = support.random_table(5, seed, scale=1.5)
    if eos_first:
        table[0, 4] = 10.0  # after bos the model says eos: the answer is [eos]
    support.check_beam(
        impl.beam_search(impl.NGramLM(table), 0, 4, 1, 8, length_penalty),
        support.greedy_until_eos(table, 0, 4, 8, length_penalty),
        name=f"beam_search(NGramLM(5-token bigram), bos=0, eos=4, beam_width=1, max_len=8, "
        f"length_penalty={length_penalty})",
        hint="a beam of 1 keeps the single best extension, eos included: that is greedy decoding",
    )


@pytest.mark.points(1)
@settings(max_examples=15)
@given(
    vocab=st.integers(3, 6),
    width=st.integers(2, 6),
    max_len=st.integers(2, 6),
    length_penalty=st.sampled_from([0.0, 0.6, 1.0, 1.5]),
    seed=SEEDS,
)
def test_a_narrow_beam_keeps_what_it_should(impl, vocab, width, max_len, length_penalty, seed):
    table = support.random_table(vocab, seed, scale=1.2)
    eos = vocab - 1
    lm = impl.NGramLM(table)
    support.check_beam(
        impl.beam_search(lm, 0, eos, width, max_len, length_penalty),
        oracle.beam_search_oracle(table, 0, eos, width, max_len, length_penalty),
        name=f"beam_search(NGramLM({vocab}-token bigram), bos=0, eos={eos}, beam_width={width}, "
        f"max_len={max_len}, length_penalty={length_penalty})",
        hint="each step keep the beam_width best of ALL extensions by raw log-probability; the kept "
        "ones ending in eos are finished (they no longer take a place in the next step)",
        suspects=mistakes.on("beam_search", table, 0, eos, max_len, length_penalty),
    )
    calls = int(lm.calls)
    if calls > max_len:
        raise CheckFailure(f"beam_search called step_fn {calls} times for max_len={max_len}: once per step")


# --- speed (2 points) ------------------------------------------------------------------------
# On (16, 50257) float32 logits, learner time / transformers' time, in the same run (medians;
# sandboxed, both sides pay the same trip of the inputs and the answer). The target
# is set at 64 rows; the ratios do not depend on the rows (benchmarks/bench_decoding.py,
# B = 1, 64, 256: the reference top-k 0.96-1.03x, top-p 0.90-0.95x, penalty 0.42-0.51x), and
# 16 rows keep the grader's memory and time down (at 64 rows 3.2 alone peaked at 866 MB
# under Gradescope's run_autograder). Top-k through a full sort measured 12x in-process and
# 9.5x sandboxed; a penalty through a (B, V) mask and torch.where ~4x, one looped over the
# 256 ids ~20x.

SHAPE = (16, 50257)
TOP_K_LIMIT, TOP_P_LIMIT, PENALTY_LIMIT = 3.0, 3.0, 8.0


def fresh_logits(draw):
    """make(i) for the timed calls: the i-th inputs are one drawn (16, 50257) float32 tensor
    rolled by i * 7919 along the vocabulary (new storage and new values for every call,
    without drawing 800,000 normals each time)."""
    base = torch.randn(SHAPE, generator=draw.generator)
    return lambda i: base.roll(i * 7919, dims=1)


def same_filtered(got, want) -> None:
    """A timed filter's answer: exactly transformers' (kept values untouched, -inf elsewhere)."""
    got = as_plain_tensor(got, "the answer")
    if got.shape != want.shape or got.dtype != want.dtype or not torch.equal(got, want):
        raise CheckFailure(f"the answer on {SHAPE} logits differs from transformers'")


def close_penalised(got, want) -> None:
    got = as_plain_tensor(got, "the answer")
    if got.shape != want.shape or got.dtype != want.dtype or not torch.allclose(got, want, 1e-5, 1e-5):
        raise CheckFailure(f"repetition_penalty on {SHAPE} logits differs from transformers'")


def same_nucleus(got, want) -> None:
    """top_p_filter's answer on 50 257 float32 logits: the kept entries unchanged, and per
    row the same cut as transformers' up to 3 tokens (a sum of 50 000 float32
    probabilities rounds, so the cut may move by a token or two; measured here: by one
    token in about 5% of the rows, never more)."""
    got = as_plain_tensor(got, "top_p_filter's answer")
    if got.shape != want.shape or got.dtype != want.dtype:
        raise CheckFailure(f"top_p_filter on {SHAPE}: got {tuple(got.shape)} {got.dtype}, not {want.dtype}")
    kept_got, kept_want = got > NEG_INF, want > NEG_INF
    both = kept_got & kept_want
    moved = (kept_got ^ kept_want).sum(-1)
    crossed = ((kept_got & ~kept_want).any(-1) & (kept_want & ~kept_got).any(-1)).any()  # not one cut
    if not torch.equal(got[both], want[both]) or int(moved.max()) > 3 or bool(crossed):
        raise CheckFailure(
            f"top_p_filter on {SHAPE}: up to {int(moved.max())} tokens per row kept differently from "
            f"transformers' TopPLogitsWarper (rounding may move the cut by up to 3 tokens)"
        )


@pytest.mark.points(1)
@pytest.mark.speed
def test_top_k_speed(impl, draw, record_metric):
    logits = fresh_logits(draw)
    assert_speed(
        impl.top_k_filter,
        lambda x, k: TopKLogitsWarper(k)(None, x),
        lambda i: (logits(i), 50),
        limit=TOP_K_LIMIT,
        what=f"top_k_filter at {SHAPE}, k=50",
        baseline_name="transformers' TopKLogitsWarper",
        hint="torch.topk(logits, k).values[..., -1:] gives the k-th value of every row without sorting",
        record_metric=record_metric,
        check=same_filtered,
        repeats=5,
    )


@pytest.mark.points(1)
@pytest.mark.speed
def test_top_p_and_penalty_speed(impl, draw, record_metric):
    logits = fresh_logits(draw)
    ids = torch.as_tensor(draw.integers(0, SHAPE[1], size=(SHAPE[0], 256)))
    assert_speed(
        impl.repetition_penalty,
        lambda x, input_ids, penalty: RepetitionPenaltyLogitsProcessor(penalty)(input_ids, x),
        lambda i: (logits(i), ids.roll(i, dims=1), 1.3),
        limit=PENALTY_LIMIT,
        what=f"repetition_penalty at {SHAPE} with 256 ids per row",
        baseline_name="transformers' RepetitionPenaltyLogitsProcessor",
        hint="gather the logits of the ids, penalise them, scatter them back: no loop over the ids",
        check=close_penalised,
        repeats=5,
    )
    assert_speed(
        impl.top_p_filter,
        lambda x, p: TopPLogitsWarper(p)(None, x),
        lambda i: (logits(i), 0.9),
        limit=TOP_P_LIMIT,
        what=f"top_p_filter at {SHAPE}, p=0.9",
        baseline_name="transformers' TopPLogitsWarper",
        hint="one sort per call (all rows at once), softmax and cumsum along the rows, then scatter the "
        "decision back: no loop over rows or tokens",
        record_metric=record_metric,
        check=same_nucleus,
        repeats=3,
    )
