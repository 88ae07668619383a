"""Hidden graders for exercise 2.4 (a GPT from your own parts): 30 points.

Oracles are torch's own parts (exercises/support/section2/gpt.py): nn.RMSNorm,
F.cross_entropy, torch.optim.AdamW, torch's LR schedulers, and a block and a model
assembled from nn.RMSNorm, nn.MultiheadAttention and nn.Linear holding the learner's
weights. The learner's code is graded with FallbackAttention (a 2.3 bug does not cost
points twice). Training runs the learner's own train / AdamW / cross_entropy in its
process; the verdicts (trajectories, validation loss) are computed here. Cheap tests
first: a wrong solution stops at its first lost point.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    CheckFailure,
    Draw,
    assert_close,
    assert_finite,
    assert_speed,
    load_support,
    value_and_grad,
)

pytestmark = pytest.mark.exercise("2.4")
support = load_support("2.4")
mistakes = support.MISCONCEPTIONS

# --- RMSNorm and SwiGLU (4 points) ------------------------------------------------


@pytest.mark.points(2)
@settings(max_examples=25)
@given(c=support.norm_case())
def test_rmsnorm_matches_torch_with_gradients(impl, c):
    rng, x, norm, torch_norm = support.rmsnorm_pair(impl, c)
    g = rng.tensor(*x.shape, dtype=c["dtype"])
    got, want = value_and_grad(norm, [x], g), value_and_grad(torch_norm, [x], g)
    what = f"RMSNorm(d={c['d']}, eps={c['eps']}) on x {tuple(x.shape)} {c['dtype']} at scale {c['scale']}"
    assert_close(
        got.output,
        want.output,
        name=what,
        suspects=mistakes.on("RMSNorm", x, torch_norm.weight.detach(), c["eps"]),
    )
    assert_close(got.inputs[0], want.inputs[0], name=f"{what}: gradient w.r.t. x")
    assert_close(got.params.get("weight"), want.params["weight"], name=f"{what}: gradient w.r.t. weight")


@pytest.mark.points(2)
@settings(max_examples=15)
@given(c=support.block_case())
def test_swiglu_matches_the_formula(impl, c):
    state = support.random_block_state(c["d"], c["hidden"], c["seed"], c["dtype"])
    mlp_state = {k.removeprefix("mlp."): v for k, v in state.items() if k.startswith("mlp.")}
    mlp = impl.SwiGLU(c["d"], c["hidden"]).to(c["dtype"])
    mlp.load_state_dict(mlp_state)
    x = Draw(c["seed"]).tensor(c["b"], c["t"], c["d"], dtype=c["dtype"])
    w1, w3, w2 = (mlp_state[f"w{i}.weight"] for i in (1, 3, 2))
    assert_close(
        mlp(x),
        F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2),
        name=f"SwiGLU(d={c['d']}, hidden={c['hidden']}) on x {tuple(x.shape)}",
        hint="w2(silu(w1(x)) * w3(x)), bias-free",
        suspects=mistakes.on("SwiGLU", mlp_state, x),
    )


# --- cross-entropy (3 points) -------------------------------------------------------


@pytest.mark.points(2)
@settings(max_examples=30)
@given(c=support.cross_entropy_case())
@example(c=support.CROSS_ENTROPY_WITH_IGNORED)
def test_cross_entropy_matches_torch_with_gradients(impl, c):
    logits, targets = support.cross_entropy_inputs(c)
    ii = c["ignore_index"]
    got = value_and_grad(
        impl.cross_entropy, [logits, targets], torch.ones((), dtype=c["dtype"]), kwargs={"ignore_index": ii}
    )
    want = value_and_grad(
        support.torch_cross_entropy,
        [logits, targets],
        torch.ones((), dtype=c["dtype"]),
        kwargs={"ignore_index": ii},
    )
    what = (
        f"cross_entropy(logits {tuple(logits.shape)} {c['dtype']} at scale {c['scale']}, ignore_index={ii})"
    )
    assert_close(
        got.output,
        want.output,
        name=what,
        suspects=mistakes.on("cross_entropy", logits, targets, ignore_index=ii),
    )
    assert_close(got.inputs[0], want.inputs[0], name=f"{what}: gradient w.r.t. logits")


@pytest.mark.points(1)
def test_cross_entropy_extremes(impl):
    logits = torch.tensor(
        [[1000.0, -1000.0, 999.0, 0.0], [-1000.0, -1000.0, -999.0, -1001.0], [5.0, 4.0, 3.0, 2.0]],
        dtype=torch.float64,
    )
    for targets, ii in [
        (torch.tensor([2, 0, 3]), -100),
        (torch.tensor([-100, 3, -100]), -100),
        (torch.tensor([1, 3, 1]), 1),
    ]:
        got = value_and_grad(
            impl.cross_entropy,
            [logits, targets],
            torch.ones((), dtype=torch.float64),
            kwargs={"ignore_index": ii},
        )
        want = support.torch_cross_entropy(logits, targets, ii)
        what = f"cross_entropy of logits near ±1000, targets {targets.tolist()}, ignore_index={ii}"
        assert_close(
            got.output,
            want,
            name=what,
            suspects=mistakes.on("cross_entropy", logits, targets, ignore_index=ii),
        )
        assert_finite(got.inputs[0], name=f"{what}: gradient w.r.t. logits")


# --- Block and GPT (8 points) -------------------------------------------------------


@pytest.mark.points(3)
@settings(max_examples=20)
@given(c=support.block_case(max_t=9))
def test_block_matches_a_torch_block_with_gradients(impl, c):
    block, state = support.learner_block(impl, c)
    reference = support.torch_block(state, c["d"], c["n_heads"], c["hidden"], c["dtype"])
    rng = Draw(c["seed"] + 1)
    x = rng.tensor(c["b"], c["t"], c["d"], dtype=c["dtype"])
    g = rng.tensor(c["b"], c["t"], c["d"], dtype=c["dtype"])
    got, want = value_and_grad(block, [x], g), value_and_grad(reference, [x], g)
    what = (
        f"Block(d={c['d']}, n_heads={c['n_heads']}, hidden={c['hidden']}) on x {tuple(x.shape)} {c['dtype']}"
    )
    assert_close(
        got.output,
        want.output,
        name=what,
        hint="pre-norm: x + attn(norm1(x), mask=causal), then x + mlp(norm2(x)); causal = ones(T, T).tril()",
        suspects=mistakes.on("Block", state, x, c["n_heads"], c["hidden"]),
    )
    assert_close(got.inputs[0], want.inputs[0], name=f"{what}: gradient w.r.t. x")
    for name, w in reference.learner_named(want.params).items():
        assert_close(got.params.get(name), w, name=f"{what}: gradient w.r.t. {name}")


@pytest.mark.points(3)
@settings(max_examples=8)
@given(c=support.gpt_case())
def test_gpt_matches_a_torch_model_with_tied_embeddings(impl, c):
    model, state = support.learner_gpt(impl, c, torch.float64)
    reference = support.torch_gpt(state, *support.gpt_args(c), c["hidden"], torch.float64)
    idx = torch.randint(0, c["vocab"], (c["b"], c["t"]), generator=torch.Generator().manual_seed(c["seed"]))
    weights = Draw(c["seed"]).tensor(c["b"], c["t"], c["vocab"], dtype=torch.float64)
    got, want = value_and_grad(model, [idx], weights), value_and_grad(reference, [idx], weights)
    what = f"GPT({support.describe_gpt(c)})"
    assert_close(got.output, want.output, name=f"{what} logits", suspects=mistakes.on("GPT", state, idx, c))
    want_params = reference.learner_named(want.params)
    if set(got.params) != set(want_params):
        raise CheckFailure(
            f"{what}: trainable parameters {sorted(got.params)}; expected {sorted(want_params)}",
            hint="names as the docstring gives them, bias-free attention, and lm_head.weight tied to "
            "tok_emb.weight (one Parameter: it is listed once, as tok_emb.weight)",
        )
    for name, w in want_params.items():
        assert_close(got.params[name], w, name=f"{what}: gradient w.r.t. {name}")
    count = sum(int(p.numel()) for p in model.parameters())
    expected = support.tied_parameter_count(c["vocab"], c["d"], c["n_layers"], c["context"], c["hidden"])
    if count != expected:
        raise CheckFailure(f"{what}: {count} parameters; a tied model has {expected}")


@pytest.mark.points(2)
@settings(max_examples=8)
@given(c=support.gpt_case(), cut=st.integers(0, 7), data=st.data())
def test_logits_never_see_later_tokens(impl, c, cut, data):
    cut = min(cut, c["t"] - 1)
    model, _ = support.learner_gpt(impl, c, torch.float64)
    gen = torch.Generator().manual_seed(c["seed"])
    idx = torch.randint(0, c["vocab"], (c["b"], c["t"]), generator=gen)
    changed = idx.clone()
    changed[:, cut + 1 :] = torch.randint(0, c["vocab"], (c["b"], c["t"] - cut - 1), generator=gen)
    before, after = model(idx), model(changed)
    assert_close(
        after[:, : cut + 1],
        before[:, : cut + 1],
        name=f"logits at positions 0..{cut} after changing tokens {cut + 1}..{c['t'] - 1} "
        f"({support.describe_gpt(c)})",
        hint="the causal mask must hide every later position in every block",
    )
    long = torch.randint(0, c["vocab"], (1, c["context"]), generator=gen)
    assert model(long).shape == (1, c["context"], c["vocab"]), (
        "a sequence of exactly `context` tokens must work"
    )


# --- schedule and AdamW (5 points) ------------------------------------------------------


@pytest.mark.points(1)
def test_lr_schedule_matches_torch_schedulers(impl):
    for total, max_lr, warmup, min_lr in [
        (30, 1e-2, 5, 1e-3),
        (100, 3e-4, 10, 0.0),
        (12, 1.0, 1, 0.5),
        (50, 2e-3, 49, 2e-4),
    ]:
        got = [impl.lr_schedule(s, total, max_lr, warmup, min_lr) for s in range(total)]
        assert_close(
            torch.tensor(got, dtype=torch.float64),
            torch.tensor(support.schedule_oracle(total, max_lr, warmup, min_lr), dtype=torch.float64),
            name=f"lr_schedule(step, {total}, {max_lr}, {warmup}, {min_lr}) for steps 0..{total - 1}",
            hint="warm-up: max_lr * (step + 1) / warmup_steps; then a half cosine from max_lr to min_lr",
        )


@pytest.mark.points(1)  # per setting: 4 points
@pytest.mark.parametrize("setting", support.ADAMW_SETTINGS)
def test_adamw_matches_torch_over_100_steps(impl, setting, draw):
    seed = int(draw.integers(0, 2**31 - 1))
    params, grads = support.optimizer_problem(seed=seed, steps=100, shapes=((4, 3), (7,), (2, 2, 2), (1,)))
    support.check_adamw(impl, setting, params, grads)


# --- the training loop (8 points) -------------------------------------------------------


@pytest.mark.points(3)
def test_train_matches_a_torch_loop_step_for_step(impl, draw):
    c = dict(vocab=7, d=8, n_layers=2, n_heads=2, context=6, hidden=12, seed=int(draw.integers(0, 10**6)))
    hyper = dict(max_lr=3e-2, warmup_steps=3, min_lr=1e-3, weight_decay=0.2)
    support.check_train(impl, c, batch=4, steps=10, hyper=hyper)


# Measured on the reference (2 busy cores, one torch thread, seeds 0-19 in a row): validation
# loss between H - 0.013 and H + 0.069 nats, 2.9-3.8 s of CPU per run (the target: H + 0.15;
# the ceiling: 90 s). Adam + L2 ends near H + 0.58 and gradients never cleared near
# H + 2.3; no bias correction and the block mistakes still reach the target (the residual stream
# carries token t even when the mask hides it) and lose their points in the cheaper tests above.
@pytest.mark.points(5)
def test_learns_a_markov_source_to_its_entropy_rate(impl, draw):
    seed = int(draw.integers(0, 20))
    cfg = support.TRAINING
    losses, val, entropy_rate, _ = support.train_on_markov(impl, seed, cfg)
    if len(losses) != cfg.steps:
        raise CheckFailure(f"train() returned {len(losses)} losses for {cfg.steps} steps")
    if not val <= entropy_rate + cfg.margin:
        raise CheckFailure(
            f"after {cfg.steps} steps on the order-2 Markov source of seed {seed} (vocabulary {cfg.vocab}), "
            f"the validation loss is {val:.4f} nats; the entropy rate is H = {entropy_rate:.4f} and the "
            f"target H + {cfg.margin} = {entropy_rate + cfg.margin:.4f} (first training loss "
            f"{losses[0]:.3f}, last {losses[-1]:.3f}; log {cfg.vocab} = {math.log(cfg.vocab):.3f})",
            hint="run llmkit show 2.4 to see your loss curve; every part passes its own test first",
        )


# --- speed (1 point) ----------------------------------------------------------------------
# The rules' point is test_no_library_shortcuts, generated from the catalog's `banned`.

SPEED_SHAPE = dict(b=8, t=64, d=64, n_heads=4, hidden=256)
# The learner's Block forward over torch's (nn.RMSNorm, nn.MultiheadAttention, nn.Linear), one
# thread, 2 busy cores (benchmarks/bench_gpt.py): the reference 1.05x at this shape (1.0-1.26x
# elsewhere, forward+backward 0.99-1.12x); a causal mask built by Python loops 3.6x here.
SPEED_LIMIT = 1.5


@pytest.mark.points(1)
@pytest.mark.speed
def test_block_speed(impl, draw, record_metric):
    s = SPEED_SHAPE
    c = dict(s, dtype=torch.float32, seed=1)
    block, state = support.learner_block(impl, c)
    reference = support.torch_block(state, s["d"], s["n_heads"], s["hidden"])
    x = draw.tensor(s["b"], s["t"], s["d"])
    assert_close(block(x), reference(x), name="Block output")
    assert_speed(
        block,
        reference,
        lambda i: (draw.tensor(s["b"], s["t"], s["d"]),),
        limit=SPEED_LIMIT,
        what=f"Block forward at (B, T, d) = ({s['b']}, {s['t']}, {s['d']})",
        baseline_name="a block of torch modules",
        hint="build the causal mask in one call, torch.ones(T, T, dtype=torch.bool).tril(): no Python loops",
        record_metric=record_metric,
        repeats=9,
    )
