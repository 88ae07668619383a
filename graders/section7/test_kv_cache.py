"""Hidden graders for exercise 7.3 (KV cache for incremental decoding): 20 points.

Oracles (exercises/support/section7/kv_cache.py), never the reference solution: the
whole sequence at once without a cache, through torch's F.scaled_dot_product_attention
(is_causal=True) with RoPE as a complex rotation in float64; greedy decoding that
recomputes the whole sequence for every token, one row at a time; the cache's contents
written slot by slot in plain loops. Learner objects are made, loaded
(``load_state_dict``), called and read (``cache.k``); generation is called through the
stub's given ``generate_from_weights`` with plain data, which is also what the speed
comparison times and what the memory harness runs in a fresh process. Shapes come from
hypothesis, values from seeded generators; the run's seed is printed and replayable
with --seed.
"""

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    CheckFailure,
    Draw,
    as_plain_tensor,
    assert_close,
    assert_speed,
    format_bytes,
    load_support,
    peak_memory_of_call,
    unchanged,
)

pytestmark = pytest.mark.exercise("7.3")
support = load_support("7.3")
mistakes = support.MISCONCEPTIONS


# --- the cache (4 points) ------------------------------------------------------------


@st.composite
def writes_case(draw_st):
    """A cache's sizes and dtype, and 1 to 3 writes of per-row positions (distinct within a
    row, so the order of one write's slots does not matter)."""
    batch, n_heads = draw_st(st.integers(1, 4)), draw_st(st.integers(1, 3))
    max_len, head_dim = draw_st(st.integers(1, 9)), draw_st(st.integers(1, 6))
    n_writes = draw_st(st.integers(1, 3))
    writes = []
    for _ in range(n_writes):
        t = draw_st(st.integers(1, max_len))
        rows = [draw_st(st.permutations(range(max_len)))[:t] for _ in range(batch)]
        writes.append(rows)
    return batch, n_heads, max_len, head_dim, draw_st(FLOAT_DTYPES), writes, draw_st(SEEDS)


@pytest.mark.points(1)
@settings(max_examples=25)
@given(case=writes_case())
def test_cache_shape_dtype_and_writes(impl, case):
    batch, n_heads, max_len, head_dim, dtype, rows, seed = case
    rng = Draw(seed)
    shape = (batch, n_heads, max_len, head_dim)
    cache = impl.KVCache(batch, max_len, n_heads, head_dim, dtype)
    made = f"KVCache(batch={batch}, max_len={max_len}, n_heads={n_heads}, head_dim={head_dim}, dtype={dtype})"
    assert_close(as_plain_tensor(cache.k), torch.zeros(shape, dtype=dtype), name=f"{made}.k when new")
    assert_close(as_plain_tensor(cache.v), torch.zeros(shape, dtype=dtype), name=f"{made}.v when new")
    writes = []
    for positions in rows:
        positions = torch.tensor(positions, dtype=torch.long)
        k_new = rng.tensor(batch, n_heads, positions.shape[1], head_dim, dtype=dtype)
        with unchanged(positions, k_new, names=["positions", "k_new"]):
            cache.write(positions, k_new, -k_new)
        writes.append((positions, k_new))
    want = support.expected_cache(shape, dtype, writes)
    where = f"{made}.k after writes at per-row positions {[w[0].tolist() for w in writes]}"
    assert_close(
        as_plain_tensor(cache.k),
        want,
        name=where,
        hint="k_new[b, :, i] goes to row b, slot positions[b, i]; a later write overwrites",
        suspects=mistakes.on("KVCache.write", shape, dtype, writes),
    )
    assert_close(as_plain_tensor(cache.v), -want, name=where.replace(".k after", ".v after"))


@pytest.mark.points(2)
def test_overflow_is_a_clear_error(impl, draw):
    cache = impl.KVCache(3, 4, 2, 2, torch.float64)
    k_new = draw.tensor(3, 2, 2, 2, dtype=torch.float64)
    support.expect_overflow_error(
        lambda: cache.write(torch.tensor([[0, 1], [2, 3], [3, 4]]), k_new, k_new),
        "KVCache(batch=3, max_len=4, ...).write(positions [[0, 1], [2, 3], [3, 4]]) (only row 2 overflows)",
    )
    assert_close(
        as_plain_tensor(cache.k),
        torch.zeros(3, 2, 4, 2, dtype=torch.float64),
        name="cache.k after a write that overflowed in one row",
        hint="check every position before writing anything",
    )
    support.expect_overflow_error(
        lambda: cache.write(torch.tensor([[-1], [0], [0]]), k_new[:, :, :1], k_new[:, :, :1]),
        "KVCache(batch=3, max_len=4, ...).write(positions [[-1], [0], [0]]) (a negative position)",
    )
    attn = impl.CachedSelfAttention(8, 2)
    cache = impl.KVCache(2, 5, 2, 4)
    attn(draw.tensor(2, 4, 8), cache, 0)
    support.expect_overflow_error(
        lambda: attn(draw.tensor(2, 2, 8), cache, 4),
        "a call of 2 tokens at start_pos=4 with a cache of max_len=5 (position 5 does not fit)",
    )
    attn(draw.tensor(2, 1, 8), cache, 4)  # the last slot is fine
    support.expect_overflow_error(
        lambda: attn(draw.tensor(2, 1, 8), cache, torch.tensor([2, 5])),
        "a decode step at start_pos=tensor([2, 5]) with a cache of max_len=5 (row 1 does not fit)",
    )


@pytest.mark.points(1)
@settings(max_examples=10)
@given(d=st.sampled_from([(4, 1), (8, 2), (12, 3)]), t=st.integers(1, 6), dtype=FLOAT_DTYPES, seed=SEEDS)
def test_cache_holds_the_rotated_keys_and_the_values(impl, d, t, dtype, seed):
    d_model, n_heads = d
    head_dim = d_model // n_heads
    weights = support.attention_weights(d_model, seed, dtype)
    x = Draw(seed + 1).tensor(2, t, d_model, dtype=dtype)
    attn = impl.CachedSelfAttention(d_model, n_heads).to(dtype)
    attn.load_state_dict(weights)
    cache = impl.KVCache(2, t + 2, n_heads, head_dim, dtype)
    attn(x, cache, 0)
    keys = x @ weights["k_proj.weight"].T
    keys = support.rope(keys.view(2, t, n_heads, head_dim).transpose(1, 2), torch.arange(t))
    values = (x @ weights["v_proj.weight"].T).view(2, t, n_heads, head_dim).transpose(1, 2)
    what = f"after a prefill of {t} tokens at start_pos=0 (d_model={d_model}, n_heads={n_heads}, {dtype})"
    assert_close(
        as_plain_tensor(cache.k)[:, :, :t],
        keys,
        name=f"cache.k[:, :, :{t}] {what}",
        hint="the cache holds the keys after RoPE, per head: (B, n_heads, position, head_dim)",
    )
    assert_close(as_plain_tensor(cache.v)[:, :, :t], values, name=f"cache.v[:, :, :{t}] {what}")


# --- attention with and without the cache (7 points) ---------------------------------


@pytest.mark.points(1)
@settings(max_examples=12)
@given(
    c=support.incremental_case(),
    start=st.one_of(st.integers(0, 50), st.lists(st.integers(0, 50), min_size=4, max_size=4)),
)
def test_without_cache_is_causal_attention(impl, c, start):
    weights, x = support.pieces_case_inputs(c)
    b, t, _ = x.shape
    start_t = torch.tensor(start[:b] if isinstance(start, list) else [start] * b)
    start_pos = torch.tensor(start[:b]) if isinstance(start, list) else start
    attn = impl.CachedSelfAttention(c["d_model"], c["n_heads"], rope=c["rope"])
    attn.load_state_dict(weights)
    with unchanged(x, names=["x"]):
        got = as_plain_tensor(attn(x, None, start_pos))
    positions = start_t[:, None] + torch.arange(t)
    assert_close(
        got,
        support.attention(weights, c["n_heads"], x, rope_on=c["rope"], positions=positions),
        name=f"CachedSelfAttention(d_model={c['d_model']}, n_heads={c['n_heads']}, rope={c['rope']})"
        f"(x of shape {tuple(x.shape)}, cache=None, start_pos={start_pos})",
        hint="without a cache: causal attention over the t tokens, rotated at start_pos + i",
    )


@pytest.mark.points(3)
@settings(max_examples=30)
@given(c=support.incremental_case(max_batch=4, max_len=16), dtype=FLOAT_DTYPES)
@example(
    c=dict(d_model=8, n_heads=2, batch=3, chunks=(5, 1, 1, 1, 3, 1), spare=0, rope=True, seed=1),
    dtype=torch.float32,
)
def test_pieces_match_the_whole_sequence(impl, c, dtype):
    weights, x = support.pieces_case_inputs(c, dtype)
    assert_close(
        support.run_in_pieces(impl, c, weights, x),
        support.attention(weights, c["n_heads"], x, rope_on=c["rope"]),
        name=f"{support.describe(c, dtype)}: the outputs of every call, joined",
        hint="a call at start_pos holds positions start_pos .. start_pos + t - 1: RoPE at those positions, "
        "write the keys to those slots, then attend to every slot <= the query's position",
        suspects=mistakes.on("attention in pieces", weights, c["n_heads"], x, c["chunks"], rope_on=c["rope"]),
    )


@pytest.mark.points(3)
@settings(max_examples=15)
@given(c=support.ragged_case(max_prefill=10), dtype=FLOAT_DTYPES)
def test_rows_at_different_positions(impl, c, dtype):
    weights, rows, padded, chunk, step = support.ragged_inputs(c, dtype)
    attn = impl.CachedSelfAttention(c["d_model"], c["n_heads"], rope=c["rope"]).to(dtype)
    attn.load_state_dict(weights)
    t = c["t"]
    cache = impl.KVCache(c["batch"], c["prefill"] + t + 1, c["n_heads"], c["d_model"] // c["n_heads"], dtype)
    first = as_plain_tensor(attn(padded, cache, 0))
    starts = torch.tensor(c["starts"])
    second = as_plain_tensor(attn(chunk, cache, starts))
    third = as_plain_tensor(attn(step, cache, starts + t))
    for b, (row, s) in enumerate(zip(rows, c["starts"])):
        want = support.attention(weights, c["n_heads"], row, rope_on=c["rope"])[0]
        assert_close(
            torch.cat([first[b, :s], second[b], third[b]]),
            want,
            name=f"{support.describe_ragged(c, dtype)}: row {b}'s outputs at its real positions 0..{s + t}",
            hint="row b's tokens sit at start_pos[b] + i: rotate, write and mask per row; the padding's "
            "slots are overwritten by the row's later tokens and never seen before that",
        )


# --- greedy generation (4 points) ------------------------------------------------------


@pytest.mark.points(1)
def test_generate_edge_cases(impl):
    c = dict(lengths=[1], max_new_tokens=6, n_layers=2, n_heads=4, seed=21)
    weights, prompts = support.prompts_inputs(c)
    for prompt_ids, what in ((prompts, "[a 1-token prompt]"), (torch.stack(prompts), "a (1, 1) tensor")):
        for n in (0, 1, 6):
            want = support.greedy(weights, 4, prompts, n)
            for use_cache in (True, False):
                got = as_plain_tensor(impl.generate_from_weights(weights, 4, prompt_ids, n, use_cache))
                assert_close(
                    got,
                    want,
                    name=f"generate_greedy(model, {what}, max_new_tokens={n}, use_cache={use_cache})",
                    hint="return int64 (B, max_new_tokens): the new tokens only",
                )


@pytest.mark.points(3)
@settings(max_examples=10)
@given(c=support.prompts_case(max_rows=4, max_prompt=10, max_new=8))
@example(c=dict(lengths=[9, 1, 4, 6], max_new_tokens=8, n_layers=2, n_heads=2, seed=5))
def test_generate_ragged_prompts(impl, c):
    support.check_ragged_generation(
        impl,
        c,
        hint="each row's first new token comes from its own last prompt token, and its decode steps "
        "start at its own length: every row gets the tokens it would get alone",
    )


# --- speed (2 points) ---------------------------------------------------------------

# One call = generating SPEED_NEW tokens after a SPEED_PROMPT-token prompt with a 2-layer
# TinyDecoder (d_model 128, float64), through the stub's generate_from_weights with the
# cache, against the oracle that recomputes the whole sequence for every token (torch's
# SDPA, no Python loop inside a step). Fresh weights and prompt for every call; every
# answer is checked against the oracle's. The target is 3x faster (ratio 0.33);
# the limit leaves headroom for noisy machines. Measured here (2 cores, load ~10, medians
# of 5): the reference 0.21x, the recompute_every_step mutant 1.53x.
SPEED_SIZES = dict(vocab=64, d_model=128, n_layers=2, d_ff=256)
SPEED_HEADS, SPEED_PROMPT, SPEED_NEW = 4, 256, 32
SPEED_LIMIT = 0.5


@pytest.mark.points(2)
@pytest.mark.speed
def test_generation_with_the_cache_is_faster(impl, record_metric):
    def make(i):
        weights = support.decoder_weights(**SPEED_SIZES, seed=100 + i, dtype=torch.float64)
        prompt = torch.randint(0, SPEED_SIZES["vocab"], (1, SPEED_PROMPT), generator=Draw(100 + i).generator)
        return weights, SPEED_HEADS, prompt, SPEED_NEW

    assert_speed(
        impl.generate_from_weights,
        support.greedy,
        make,
        limit=SPEED_LIMIT,
        what=f"generating {SPEED_NEW} tokens after a {SPEED_PROMPT}-token prompt with the cache "
        f"(TinyDecoder d_model={SPEED_SIZES['d_model']}, {SPEED_SIZES['n_layers']} layers, float64)",
        baseline_name="recomputing the whole sequence for every token",
        hint="with use_cache=True, prefill the prompt once, then feed only the newest token (t = 1) with "
        "start_pos: a decode step must not run the earlier tokens through the model again",
        record_metric=record_metric,
        repeats=5,
    )


# --- memory (3 points) ----------------------------------------------------------------

# Greedy generation after an 8-token prompt up to MEM_LENGTHS total tokens (max_len), each
# in a fresh process (sandboxed under --sandbox); its peak RSS from the OS minus that of
# the same harness and inputs without the learner's code. The verdict is the growth
# between the two lengths: a cache of max_len slots grows by MEM_CACHE_GROWTH; a
# (max_len, max_len) mask grows by 15 MiB as bool and 60 MiB as float32. Measured here:
# the reference grows by 1.5 MiB (9.9 -> 11.4 MiB), the quadratic_mask_buffer mutant by
# 67.6 MiB (10.1 -> 77.7 MiB).
MEM_SIZES = dict(vocab=32, d_model=32, n_layers=1, d_ff=64)
MEM_HEADS, MEM_PROMPT, MEM_LENGTHS = 2, 8, (256, 3072)
MEM_CACHE_GROWTH = 2 * MEM_SIZES["n_layers"] * MEM_SIZES["d_model"] * 8 * (MEM_LENGTHS[1] - MEM_LENGTHS[0])
MEM_BUDGET = 6 * 2**20  # bytes of growth allowed: the cache's 1.4 MiB, and room for noise
MEM_CHECKED = 48  # tokens of the measured call checked against the oracle


@pytest.mark.points(3)
def test_memory_grows_linearly_with_the_length(impl, impl_files, exercise):
    weights = support.decoder_weights(**MEM_SIZES, seed=9, dtype=torch.float64)
    prompt = torch.randint(1, MEM_SIZES["vocab"], (1, MEM_PROMPT), generator=Draw(9).generator)
    impl.generate_from_weights(weights, MEM_HEADS, prompt, 2)  # a stub stops here, "not started"
    want = support.greedy(weights, MEM_HEADS, prompt, MEM_CHECKED)
    peaks = []
    for length in MEM_LENGTHS:
        n = length - MEM_PROMPT
        used = peak_memory_of_call(
            impl_files,
            "generate_from_weights",
            [weights, MEM_HEADS, prompt, n],
            exercise=exercise.id,
            banned=exercise.banned,
        )
        got = as_plain_tensor(used.output)
        if tuple(got.shape) != (1, n):
            raise CheckFailure(f"generate_greedy(..., max_new_tokens={n}) returned shape {tuple(got.shape)}")
        assert_close(
            got[:, :MEM_CHECKED], want, name=f"the first {MEM_CHECKED} of {n} tokens of the call measured"
        )
        peaks.append(used)
    growth = peaks[1].peak_bytes - peaks[0].peak_bytes
    if growth > MEM_BUDGET:
        short, long = MEM_LENGTHS
        model = f"TinyDecoder d_model={MEM_SIZES['d_model']}, {MEM_SIZES['n_layers']} layer, float64, batch 1"
        before, after = format_bytes(peaks[0].peak_bytes), format_bytes(peaks[1].peak_bytes)
        bool_mask, float_mask = format_bytes(long**2), format_bytes(4 * long**2)
        raise CheckFailure(
            f"too much memory: generating up to {long} tokens instead of {short} ({model}) added "
            f"{format_bytes(growth)} to the peak resident memory of its process ({before} -> {after} above "
            "the same process without your code; the operating system's count): the budget for that growth "
            f"is {format_bytes(MEM_BUDGET)}. The keys and values of the longer cache take "
            f"{format_bytes(MEM_CACHE_GROWTH)} more; a {long} x {long} mask takes {bool_mask} as bool and "
            f"{float_mask} as float32",
            hint="memory must grow linearly with max_len: build each call's (t, start_pos + t) mask from "
            "positions, and keep nothing of size max_len x max_len",
        )
