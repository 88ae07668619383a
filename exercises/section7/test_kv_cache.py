"""Public tests for exercise 7.3 (KV cache for incremental decoding). Run: pytest exercises/section7

Your attention is run over a sequence in pieces (a prefill, then decode steps and
chunks, with one cache) and compared with the whole sequence at once, without a cache,
computed by torch's F.scaled_dot_product_attention (is_causal=True) with RoPE written as
a complex rotation. Rows of a batch sit at different positions, as with prompts of
different lengths; greedy generation with and without the cache is compared with a
decoder that recomputes everything. When a check fails it says which known mistake your
output looks like. The hidden graders draw more cases, and time and measure generation.
"""

import pytest
import torch
from hypothesis import example, given, settings

from llmkit.testing import CheckFailure, as_plain_tensor, assert_close, load_support

pytestmark = pytest.mark.exercise("7.3")
support = load_support("7.3")
mistakes = support.MISCONCEPTIONS


def test_cache_shape_and_writes(impl, draw):
    batch, n_heads, max_len, head_dim = 3, 2, 6, 4
    cache = impl.KVCache(batch, max_len, n_heads, head_dim, torch.float64)
    shape = (batch, n_heads, max_len, head_dim)
    zeros = torch.zeros(shape, dtype=torch.float64)
    assert_close(as_plain_tensor(cache.k), zeros, name="KVCache(3, 6, 2, 4, float64).k when new")
    assert_close(as_plain_tensor(cache.v), zeros, name="KVCache(3, 6, 2, 4, float64).v when new")
    # rows at different positions; the second write overwrites some slots of the first
    writes = [
        (
            torch.tensor([[0, 1, 2], [0, 1, 2], [0, 1, 2]]),
            draw.tensor(batch, n_heads, 3, head_dim, dtype=torch.float64),
        ),
        (torch.tensor([[3], [1], [5]]), draw.tensor(batch, n_heads, 1, head_dim, dtype=torch.float64)),
    ]
    for positions, k_new in writes:
        cache.write(positions, k_new, 2 * k_new)
    want = support.expected_cache(shape, torch.float64, writes)
    suspects = mistakes.on("KVCache.write", shape, torch.float64, writes)
    where = "after write(positions [[0, 1, 2]] * 3, ...) then write(positions [[3], [1], [5]], ...)"
    assert_close(as_plain_tensor(cache.k), want, name=f"cache.k {where}", suspects=suspects)
    assert_close(as_plain_tensor(cache.v), 2 * want, name=f"cache.v {where}")


CASE = dict(d_model=8, n_heads=2, batch=2, chunks=(4, 1, 1, 2, 1), spare=1, rope=True, seed=7)


@settings(max_examples=8)
@given(c=support.incremental_case())
@example(c=CASE)
def test_pieces_match_the_whole_sequence(impl, c):
    weights, x = support.pieces_case_inputs(c)
    got = support.run_in_pieces(impl, c, weights, x)
    assert_close(
        got,
        support.attention(weights, c["n_heads"], x, rope_on=c["rope"]),
        name=f"{support.describe(c)}: the outputs of every call, joined",
        hint="a call at start_pos holds positions start_pos .. start_pos + t - 1: RoPE at those positions, "
        "write the keys to those slots, then attend to every slot <= the query's position",
        suspects=mistakes.on("attention in pieces", weights, c["n_heads"], x, c["chunks"], rope_on=c["rope"]),
    )


@settings(max_examples=6)
@given(c=support.ragged_case())
def test_rows_at_different_positions(impl, c):
    weights, rows, padded, chunk, step = support.ragged_inputs(c)
    attn = impl.CachedSelfAttention(c["d_model"], c["n_heads"], rope=c["rope"])
    attn.load_state_dict(weights)
    t = c["t"]
    cache = impl.KVCache(c["batch"], c["prefill"] + t + 1, c["n_heads"], c["d_model"] // c["n_heads"])
    first = as_plain_tensor(attn(padded, cache, 0))
    starts = torch.tensor(c["starts"])
    second = as_plain_tensor(attn(chunk, cache, starts))
    third = as_plain_tensor(attn(step, cache, starts + t))
    for b, (row, s) in enumerate(zip(rows, c["starts"])):
        want = support.attention(weights, c["n_heads"], row, rope_on=c["rope"])[0]
        got = torch.cat([first[b, :s], second[b], third[b]])
        assert_close(
            got,
            want,
            name=f"{support.describe_ragged(c)}: row {b}'s outputs at its real positions 0..{s + t}",
            hint="row b's tokens sit at start_pos[b] + i: rotate, write and mask per row; the padding's "
            "slots are overwritten by the row's later tokens and never seen before that",
        )


@settings(max_examples=4)
@given(c=support.prompts_case())
@example(c=dict(lengths=[5, 2, 7], max_new_tokens=5, n_layers=2, n_heads=2, seed=3))
def test_generate_matches_recomputing(impl, c):
    support.check_ragged_generation(
        impl,
        c,
        hint="each row's first new token comes from its own last prompt token; each row gets the "
        "tokens it would get alone",
    )


def test_generate_from_a_tensor_of_prompts(impl):
    c = dict(lengths=[4, 4], max_new_tokens=4, n_layers=1, n_heads=2, seed=11)
    weights, prompts = support.prompts_inputs(c)
    batch = torch.stack(prompts)
    got = impl.generate_from_weights(weights, 2, batch, 4)
    assert_close(
        as_plain_tensor(got),
        support.greedy(weights, 2, prompts, 4),
        name="generate_greedy(model, a (2, 4) int64 tensor of prompts, max_new_tokens=4)",
    )
    none = as_plain_tensor(impl.generate_from_weights(weights, 2, batch, 0))
    if tuple(none.shape) != (2, 0) or none.dtype != torch.int64:
        raise CheckFailure(
            f"generate_greedy(..., max_new_tokens=0) should return an empty int64 (2, 0) tensor, got "
            f"{none.dtype} {tuple(none.shape)}"
        )


def test_overflow_is_a_clear_error(impl, draw):
    cache = impl.KVCache(2, 5, 1, 2, torch.float32)
    k_new = draw.tensor(2, 1, 2, 2)
    support.expect_overflow_error(
        lambda: cache.write(torch.tensor([[3, 4], [4, 5]]), k_new, k_new),
        "KVCache(batch=2, max_len=5, ...).write(positions [[3, 4], [4, 5]]) (position 5 does not fit)",
    )
    assert_close(
        as_plain_tensor(cache.k),
        torch.zeros(2, 1, 5, 2),
        name="cache.k after a write that overflowed",
        hint="check every position before writing anything",
    )
    attn = impl.CachedSelfAttention(4, 2)
    cache = impl.KVCache(1, 3, 2, 2, torch.float32)
    attn(draw.tensor(1, 3, 4), cache, 0)
    support.expect_overflow_error(
        lambda: attn(draw.tensor(1, 1, 4), cache, 3),
        "a decode step at start_pos=3 with a cache of max_len=3",
    )
