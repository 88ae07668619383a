"""Public tests for exercise 2.3 (attention). Run: pytest exercises/section2

They draw shapes and masks at random (a few examples each: several batch dimensions,
Lq != Lk, d != dv, fully masked rows) and compare with torch's own implementations.
When a check fails it says which known mistake your output looks like. The hidden
graders draw more examples and also check gradients, speed and the rules.
"""

import pytest
import torch
from hypothesis import example, given, settings

from llmkit.testing import FLOAT_DTYPES, SEEDS, Draw, assert_close, assert_finite, load_support

pytestmark = pytest.mark.exercise("2.3")
support = load_support("2.3")
mistakes = support.MISCONCEPTIONS


@settings(max_examples=10)
@given(shape=support.st.lists(support.sizes, min_size=1, max_size=3), dtype=FLOAT_DTYPES, seed=SEEDS)
def test_softmax_matches_torch(impl, shape, dtype, seed):
    x = Draw(seed).tensor(*shape, dtype=dtype, scale=5.0)
    for dim in range(-len(shape), 0):
        assert_close(
            impl.softmax(x, dim=dim),
            torch.softmax(x, dim=dim),
            name=f"softmax(x of shape {tuple(shape)}, dim={dim})",
            suspects=mistakes.on("softmax", x, dim=dim),
        )


def test_softmax_of_large_and_all_minus_inf_rows(impl):
    inf = float("inf")
    x = torch.tensor([[1000.0, 1000.0, -1000.0], [-1000.0, -999.0, -1000.0], [-inf, -inf, -inf]])
    out = impl.softmax(x)
    expected = torch.cat([torch.softmax(x[:2], dim=-1), torch.zeros(1, 3)])
    assert_close(out, expected, name="softmax of large and all -inf rows", suspects=mistakes.on("softmax", x))


@settings(max_examples=15)
@given(case=support.attention_case())
def test_attention_matches_torch(impl, case):
    q, k, v, mask, causal = support.attention_inputs(case)
    assert_close(
        impl.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=causal),
        support.attention(q, k, v, mask, causal),
        name=f"attention(q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, "
        f"mask={None if mask is None else tuple(mask.shape)}, is_causal={causal})",
        hint="scores are q @ k^T / sqrt(d), -inf where masked (True = may attend, causal: key j <= "
        "query i), softmax over the keys (last axis)",
        suspects=mistakes.on("scaled_dot_product_attention", q, k, v, mask=mask, is_causal=causal),
    )


@settings(max_examples=5)
@given(case=support.attention_case())
def test_query_that_sees_no_key_gets_zeros(impl, case):
    batch, lq, lk, d, dv, dtype, _, _, seed = case
    q, k, v, mask, _ = support.attention_inputs(
        (batch, lq, lk, d, dv, dtype, "mask", "full", seed), keep_rows_alive=False
    )
    mask[..., 0, :] = False  # query 0 sees nothing
    assert_close(
        impl.scaled_dot_product_attention(q, k, v, mask=mask),
        support.attention(q, k, v, mask),
        name="attention with a fully masked query row",
        suspects=mistakes.on("scaled_dot_product_attention", q, k, v, mask=mask),
    )


def test_attention_with_large_logits_is_finite(impl, draw):
    q, k = draw.tensor(2, 6, 8, scale=60.0), draw.tensor(2, 6, 8, scale=60.0)
    v = draw.tensor(2, 6, 8)
    out = impl.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert_finite(out, name="attention with large logits", hint="use a numerically stable softmax")


@settings(max_examples=8)
@given(case=support.mha_case(), causal=support.st.booleans())
@example(case=support.MHA_HEADS_MATTER, causal=False)
def test_multi_head_attention_matches_torch(impl, case, causal):
    learner, reference = support.mha_pair(impl, case)
    rng = Draw(case["seed"])
    x = rng.tensor(case["b"], case["lq"], case["d_model"], dtype=case["dtype"])
    kv = rng.tensor(case["b"], case["lk"], case["d_model"], dtype=case["dtype"]) if case["cross"] else x
    assert_close(
        learner(x, kv, kv, is_causal=causal),
        support.mha_forward(reference, x, kv, kv, None, causal),
        name=f"MultiHeadAttention(d_model={case['d_model']}, n_heads={case['n_heads']}, "
        f"bias={case['bias']}), is_causal={causal}",
        suspects=mistakes.on("MultiHeadAttention", reference, x, kv, kv, is_causal=causal),
    )
