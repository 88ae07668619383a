"""Hidden graders for exercise 2.3 (attention): 20 points.

Oracles are torch's own implementations (exercises/support/section2/attention.py),
never the reference solution. Inputs come from hypothesis (shapes) and seeded
generators (values); the run's seed is printed and replayable with --seed.
"""

import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    Draw,
    assert_close,
    assert_finite,
    assert_speed,
    check_gradients,
    load_support,
    poisoned_allocations,
    unchanged,
    value_and_grad,
)

pytestmark = pytest.mark.exercise("2.3")
support = load_support("2.3")
mistakes = support.MISCONCEPTIONS

# --- softmax (4 points) ------------------------------------------------------


@pytest.mark.points(2)
@settings(max_examples=40)
@given(shape=st.lists(support.sizes, min_size=1, max_size=4), dtype=FLOAT_DTYPES, seed=SEEDS, data=st.data())
def test_softmax_matches_torch(impl, shape, dtype, seed, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    x = Draw(seed).tensor(*shape, dtype=dtype, scale=5.0)
    with unchanged(x, names=["x"]):
        out = impl.softmax(x, dim=dim)
    assert_close(
        out,
        torch.softmax(x, dim=dim),
        name=f"softmax(x of shape {tuple(shape)}, dim={dim})",
        hint="normalise along `dim` only; each slice along dim must sum to 1",
        suspects=mistakes.on("softmax", x, dim=dim),
    )


@pytest.mark.points(2)
def test_softmax_stable_and_all_minus_inf(impl):
    inf = float("inf")
    x = torch.tensor(
        [[1e4, 1e4 - 1, -1e4], [-1e4, -1e4 + 2, -1e4], [-inf, 3.0, -inf], [-inf, -inf, -inf]],
        dtype=torch.float64,
    )
    weights = torch.arange(1.0, 4.0, dtype=torch.float64)
    out, (grad,), _ = value_and_grad(impl.softmax, [x], weights, kwargs={"dim": -1})
    expected = torch.softmax(x[:3], dim=-1)
    assert_close(
        out[:3], expected, name="softmax of extreme rows", hint="subtract the row maximum before exp()"
    )
    assert_close(
        out[3],
        torch.zeros(3, dtype=torch.float64),
        name="softmax of an all -inf row",
        hint="a row with nothing to attend to must give zeros, not NaN",
    )
    assert_finite(
        grad,
        name="gradient of softmax with -inf entries",
        hint="NaN gradients come from exp(-inf - -inf); guard the all -inf case",
    )


# --- scaled dot-product attention (9 points) ---------------------------------


@pytest.mark.points(3)
@settings(max_examples=60)
@given(case=support.attention_case())
def test_sdpa_matches_torch(impl, case):
    q, k, v, mask, causal = support.attention_inputs(case)
    out = impl.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=causal)
    assert_close(
        out,
        support.attention(q, k, v, mask, causal),
        name=f"attention(q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, "
        f"mask={None if mask is None else tuple(mask.shape)}, is_causal={causal})",
        hint="check the 1/sqrt(d) scale (d = q.shape[-1]), the softmax axis (keys), "
        "mask polarity (True = attend) and the causal diagonal (query i sees key i)",
        suspects=mistakes.on("scaled_dot_product_attention", q, k, v, mask=mask, is_causal=causal),
    )


@pytest.mark.points(1)
def test_sdpa_large_logits(impl, draw):
    # Logits in the thousands overflow exp() even in float64 (beyond ~709) unless the
    # softmax subtracts the row max. float64, because in float32 the rounding of such
    # logits alone moves the output by up to ~1e-3: no tolerance would be fair there.
    q, k = (
        draw.tensor(2, 16, 8, scale=60.0, dtype=torch.float64),
        draw.tensor(2, 16, 8, scale=60.0, dtype=torch.float64),
    )
    v = draw.tensor(2, 16, 8, dtype=torch.float64)
    out = impl.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert_finite(out, name="attention with large logits", hint="use a numerically stable softmax")
    assert_close(out, support.attention(q, k, v, None, True), name="attention with large logits")


@pytest.mark.points(2)
@settings(max_examples=25)
@given(case=support.attention_case())
def test_sdpa_fully_masked_rows_are_zero(impl, case):
    batch, lq, lk, d, dv, dtype, _, _, seed = case
    q, k, v, mask, _ = support.attention_inputs(
        (batch, lq, lk, d, dv, dtype, "mask", "full", seed), keep_rows_alive=False
    )
    mask[..., 0, :] = False  # query 0 can see nothing
    ones = torch.ones(*q.shape[:-1], v.shape[-1], dtype=dtype)
    out, (q_grad, _, _), _ = value_and_grad(
        impl.scaled_dot_product_attention, [q, k, v], ones, kwargs={"mask": mask}
    )
    assert_close(
        out,
        support.attention(q, k, v, mask, False),
        name="attention with fully masked query rows",
        hint="a query row with no allowed key returns zeros (see the docstring)",
        suspects=mistakes.on("scaled_dot_product_attention", q, k, v, mask=mask),
    )
    assert_finite(q_grad, name="gradient w.r.t. q with fully masked rows")


@pytest.mark.points(2)
@settings(max_examples=6)
@given(case=support.attention_case())
def test_sdpa_gradients(impl, case):
    batch, lq, lk, d, dv, _, masking, mask_shape, seed = case
    q, k, v, mask, causal = support.attention_inputs(
        (batch[:1], min(lq, 4), min(lk, 4), d, dv, torch.float64, masking, mask_shape, seed)
    )
    check_gradients(
        impl.scaled_dot_product_attention,
        [q, k, v],
        kwargs={"mask": mask, "is_causal": causal},
        names=["q", "k", "v"],
        hint="keep the computation in torch ops on the inputs (no .detach() / .item() / numpy)",
    )


@pytest.mark.points(1)
def test_sdpa_leaves_inputs_alone_and_writes_every_element(impl, draw):
    q, k, v = draw.tensor(3, 7, 5), draw.tensor(3, 9, 5), draw.tensor(3, 9, 2)
    mask = draw.bool_mask(7, 9)
    mask[:, 0] = True
    with unchanged(q, k, v, mask, names=["q", "k", "v", "mask"]), poisoned_allocations():
        out = impl.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=True)
    assert_close(out, support.attention(q, k, v, mask, True), name="attention output")


# --- multi-head attention (5 points) -----------------------------------------


@pytest.mark.points(3)
@settings(max_examples=40)
@given(c=support.mha_case(), causal=st.booleans())
@example(c=support.MHA_HEADS_MATTER, causal=True)
def test_mha_matches_torch(impl, c, causal):
    learner, reference = support.mha_pair(impl, c)
    rng = Draw(c["seed"])
    x = rng.tensor(c["b"], c["lq"], c["d_model"], dtype=c["dtype"])
    kv = rng.tensor(c["b"], c["lk"], c["d_model"], dtype=c["dtype"]) if c["cross"] else x
    got = learner(x, kv, kv, is_causal=causal) if c["cross"] else learner(x, is_causal=causal)
    assert_close(
        got,
        support.mha_forward(reference, x, kv, kv, None, causal),
        name=f"MultiHeadAttention(d_model={c['d_model']}, n_heads={c['n_heads']}, "
        f"bias={c['bias']}) {'cross' if c['cross'] else 'self'}-attention, is_causal={causal}",
        hint="heads: view(B, L, n_heads, head_dim).transpose(1, 2); scale by sqrt(head_dim); "
        "key defaults to query and value to key",
        suspects=mistakes.on("MultiHeadAttention", reference, x, kv, kv, is_causal=causal),
    )


@pytest.mark.points(2)
@settings(max_examples=10)
@given(c=support.mha_case(), per_batch=st.booleans())
@example(c=support.MHA_HEADS_MATTER, per_batch=True)
def test_mha_mask_and_gradients(impl, c, per_batch):
    c = {**c, "dtype": torch.float64}
    learner, reference = support.mha_pair(impl, c)
    rng = Draw(c["seed"] + 1)
    x = rng.tensor(c["b"], c["lq"], c["d_model"], dtype=torch.float64)
    kv = rng.tensor(c["b"], c["lk"], c["d_model"], dtype=torch.float64)
    mask = rng.bool_mask(*((c["b"], 1) if per_batch else ()), c["lq"], c["lk"])
    mask[..., 0] = True
    weights = Draw(c["seed"] + 2).tensor(c["b"], c["lq"], c["d_model"], dtype=torch.float64)
    got, got_grads, got_param_grads = value_and_grad(learner, [x, kv, kv], weights, kwargs={"mask": mask})
    torch_side = support.KitConventionMHA(reference)
    want, want_grads, want_param_grads = value_and_grad(
        torch_side, [x, kv, kv], weights, kwargs={"mask": mask}
    )
    assert_close(
        got,
        want,
        name=f"masked MultiHeadAttention (mask shape {tuple(mask.shape)})",
        hint="the mask broadcasts over heads: True = may attend",
    )
    for name, g, w in zip(["query", "key", "value"], got_grads, want_grads):
        assert_close(g, w, name=f"gradient w.r.t. the {name} input")
    for name, want_grad in torch_side.learner_named(want_param_grads).items():
        assert_close(got_param_grads.get(name), want_grad, name=f"gradient w.r.t. {name}")


# --- rules and speed (2 points) ----------------------------------------------
# The rules' point is test_no_library_shortcuts, which the plugin generates from the
# catalog's `banned` (llmkit.plugin.bans; its call is support.check_one_call).


def naive_attention(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    return (weights / weights.sum(dim=-1, keepdim=True)) @ v


# learner time / a plain batched implementation, at two shapes: many short rows (32
# batches x 4 heads x 64 rows) make a loop over heads stand out, one long sequence (2
# heads x 512 rows) a loop over query rows that still batches the heads. Measured here
# (2 cores, medians of 7): the reference 1.15x and 0.7x; a loop over heads ~9x at the
# first; the row loop that batches heads 3.1x and 39x; a loop over every query ~300x.
SPEED_LIMIT = 3.0
SPEED_SHAPES = ((32, 4, 64, 16), (1, 2, 512, 16))


@pytest.mark.points(1)
@pytest.mark.speed
def test_sdpa_speed_is_vectorised(impl, draw, record_metric):
    for shape in SPEED_SHAPES:  # the metric kept is the last shape's
        q, k, v = (draw.tensor(*shape) for _ in range(3))
        assert_close(
            impl.scaled_dot_product_attention(q, k, v), naive_attention(q, k, v), name="attention output"
        )
        # Fresh q, k, v for every timed call; every answer is checked against the baseline's.
        assert_speed(
            impl.scaled_dot_product_attention,
            naive_attention,
            lambda i, shape=shape: tuple(draw.tensor(*shape) for _ in range(3)),
            limit=SPEED_LIMIT,
            what=f"attention at {shape}",
            baseline_name="a plain batched attention",
            hint="use batched matrix products over all leading dims, no Python loops over rows or heads",
            record_metric=record_metric,
            repeats=9,
        )
