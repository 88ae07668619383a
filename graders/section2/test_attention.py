"""Hidden graders for exercise 2.3 (attention): 20 points.

Oracles are torch's own implementations (exercises/support/section2/attention.py),
never the reference solution. Inputs come from hypothesis (shapes) and seeded
generators (values); the run's seed is printed and replayable with --seed.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    Draw,
    assert_close,
    assert_finite,
    assert_speed,
    batch_shapes,
    check_gradients,
    load_support,
    poisoned_allocations,
    unchanged,
    value_and_grad,
)

pytestmark = pytest.mark.exercise("2.3")
support = load_support("2.3")

dims = st.integers(1, 6)


@st.composite
def attention_case(draw_st):
    """Shapes (batch..., Lq, Lk, d, dv), dtype, masking and a value seed."""
    batch = draw_st(batch_shapes())
    lq, lk, d, dv = draw_st(dims), draw_st(dims), draw_st(dims), draw_st(dims)
    masking = draw_st(st.sampled_from(["none", "mask", "causal", "both"]))
    mask_shape = draw_st(st.sampled_from(["full", "2d", "broadcast"]))
    return batch, lq, lk, d, dv, draw_st(FLOAT_DTYPES), masking, mask_shape, draw_st(SEEDS)


def make_inputs(case, *, keep_rows_alive=True):
    batch, lq, lk, d, dv, dtype, masking, mask_shape, seed = case
    rng = Draw(seed)
    q = rng.tensor(*batch, lq, d, dtype=dtype, scale=2.0)
    k = rng.tensor(*batch, lk, d, dtype=dtype, scale=2.0)
    v = rng.tensor(*batch, lk, dv, dtype=dtype)
    mask = None
    if masking in ("mask", "both"):
        shape = {"full": (*batch, lq, lk), "2d": (lq, lk), "broadcast": (*(1,) * len(batch), lq, lk)}
        mask = rng.bool_mask(*shape[mask_shape])
        if keep_rows_alive:
            mask[..., 0] = True  # key 0 is visible to every query, causal or not
    return q, k, v, mask, masking in ("causal", "both")


# --- softmax (4 points) ------------------------------------------------------


@pytest.mark.points(2)
@settings(max_examples=40)
@given(shape=st.lists(dims, min_size=1, max_size=4), dtype=FLOAT_DTYPES, seed=SEEDS, data=st.data())
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
@given(case=attention_case())
def test_sdpa_matches_torch(impl, case):
    q, k, v, mask, causal = make_inputs(case)
    out = impl.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=causal)
    assert_close(
        out,
        support.attention(q, k, v, mask, causal),
        name=f"attention(q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, "
        f"mask={None if mask is None else tuple(mask.shape)}, is_causal={causal})",
        hint="check the 1/sqrt(d) scale (d = q.shape[-1]), the softmax axis (keys), "
        "mask polarity (True = attend) and the causal diagonal (query i sees key i)",
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
@given(case=attention_case())
def test_sdpa_fully_masked_rows_are_zero(impl, case):
    batch, lq, lk, d, dv, dtype, _, _, seed = case
    q, k, v, mask, _ = make_inputs((batch, lq, lk, d, dv, dtype, "mask", "full", seed), keep_rows_alive=False)
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
    )
    assert_finite(q_grad, name="gradient w.r.t. q with fully masked rows")


@pytest.mark.points(2)
@settings(max_examples=6)
@given(case=attention_case())
def test_sdpa_gradients(impl, case):
    batch, lq, lk, d, dv, _, masking, mask_shape, seed = case
    q, k, v, mask, causal = make_inputs(
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


@st.composite
def mha_case(draw_st):
    n_heads = draw_st(st.integers(1, 4))
    head_dim = draw_st(st.integers(1, 5))
    return dict(
        n_heads=n_heads,
        d_model=n_heads * head_dim,
        bias=draw_st(st.booleans()),
        b=draw_st(st.integers(1, 3)),
        lq=draw_st(dims),
        lk=draw_st(dims),
        cross=draw_st(st.booleans()),
        dtype=draw_st(FLOAT_DTYPES),
        seed=draw_st(SEEDS),
    )


def mha_pair(impl, c):
    reference = support.torch_mha(c["d_model"], c["n_heads"], c["bias"], c["dtype"], c["seed"])
    learner = impl.MultiHeadAttention(c["d_model"], c["n_heads"], bias=c["bias"]).to(c["dtype"])
    learner.load_state_dict(support.state_dict_for_learner(reference))
    return learner, reference


@pytest.mark.points(3)
@settings(max_examples=40)
@given(c=mha_case(), causal=st.booleans())
def test_mha_matches_torch(impl, c, causal):
    learner, reference = mha_pair(impl, c)
    rng = Draw(c["seed"])
    x = rng.tensor(c["b"], c["lq"], c["d_model"], dtype=c["dtype"])
    if c["cross"]:
        kv = rng.tensor(c["b"], c["lk"], c["d_model"], dtype=c["dtype"])
        got, want = (
            learner(x, kv, kv, is_causal=causal),
            support.mha_forward(reference, x, kv, kv, None, causal),
        )
    else:
        got, want = learner(x, is_causal=causal), support.mha_forward(reference, x, x, x, None, causal)
    assert_close(
        got,
        want,
        name=f"MultiHeadAttention(d_model={c['d_model']}, n_heads={c['n_heads']}, "
        f"bias={c['bias']}) {'cross' if c['cross'] else 'self'}-attention, is_causal={causal}",
        hint="heads: view(B, L, n_heads, head_dim).transpose(1, 2); scale by sqrt(head_dim); "
        "key defaults to query and value to key",
    )


@pytest.mark.points(2)
@settings(max_examples=10)
@given(c=mha_case(), per_batch=st.booleans())
def test_mha_mask_and_gradients(impl, c, per_batch):
    c = {**c, "dtype": torch.float64}
    learner, reference = mha_pair(impl, c)
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


# learner time / a plain batched implementation. Many short rows make Python loops
# stand out: measured here (2 cores), the reference is 1.0-1.2x, a loop over heads
# ~9x and a loop over query rows ~300x.
SPEED_LIMIT = 3.0
SPEED_SHAPE = (32, 4, 64, 16)


@pytest.mark.points(1)
@pytest.mark.speed
def test_sdpa_speed_is_vectorised(impl, draw, record_metric):
    q, k, v = (draw.tensor(*SPEED_SHAPE) for _ in range(3))
    assert_close(
        impl.scaled_dot_product_attention(q, k, v), naive_attention(q, k, v), name="attention output"
    )
    # Fresh q, k, v for every timed call; every answer is checked against the baseline's.
    assert_speed(
        impl.scaled_dot_product_attention,
        naive_attention,
        lambda i: tuple(draw.tensor(*SPEED_SHAPE) for _ in range(3)),
        limit=SPEED_LIMIT,
        what=f"attention at {SPEED_SHAPE}",
        baseline_name="a plain batched attention",
        hint="use batched matrix products over all leading dims, no Python loops over rows or heads",
        record_metric=record_metric,
        repeats=9,
    )
