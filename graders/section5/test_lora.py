"""Hidden graders for exercise 5.1 (LoRA): 25 points.

Oracles are the LoRA formula written out in float64 and analytic gradients
(exercises/support/section5/lora.py), never the reference solution. Learner objects are
only called, loaded (``load_state_dict``) and read (``state_dict``, ``merged``);
gradients come from ``value_and_grad`` and the optimiser runs on grader-side
copies (``support.finetune``). Shapes come from hypothesis, values from seeded
generators; the run's seed is printed and replayable with --seed.
"""

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    SEEDS,
    CheckFailure,
    Draw,
    assert_close,
    check_equal,
    load_support,
    unchanged,
    value_and_grad,
)

pytestmark = pytest.mark.exercise("5.1")
support = load_support("5.1")
mistakes = support.MISCONCEPTIONS
diagnosed_as = support.diagnosed_as
# The inputs the public tests draw too (exercises/support/section5/lora.py).
layer_case, make_layer, load_random_adapter, describe = (
    support.layer_case,
    support.make_layer,
    support.load_random_adapter,
    support.describe,
)


# --- the layer (9 points) ----------------------------------------------------


@pytest.mark.points(1)
@settings(max_examples=20)
@given(c=layer_case())
def test_structure_and_what_trains(impl, c):
    layer, _, w, b = make_layer(impl, c)
    state = layer.state_dict()
    expected_keys = {"base.weight", "lora_A", "lora_B"} | ({"base.bias"} if c["bias"] else set())
    missing = expected_keys - set(state)
    if missing:
        raise CheckFailure(
            f"{describe(c)}: state_dict lacks {sorted(missing)} (has {sorted(state)})",
            hint="keep the nn.Linear as self.base and the adapters as nn.Parameter self.lora_A / self.lora_B",
        )
    for key, shape in (("lora_A", (c["r"], c["in_f"])), ("lora_B", (c["out_f"], c["r"]))):
        got = state[key]
        if tuple(got.shape) != shape or got.dtype != c["dtype"]:
            raise CheckFailure(
                f"{describe(c)}: {key} should be {shape} {c['dtype']}, got {tuple(got.shape)} {got.dtype}",
                hint="A is (r, in_features), B is (out_features, r), both in the base weight's dtype",
            )
    assert_close(state["base.weight"], w, name="base.weight", rtol=0, atol=0, hint="do not modify the base")
    if b is not None:
        assert_close(state["base.bias"], b, name="base.bias", rtol=0, atol=0)
    with diagnosed_as("b_random_init"):
        assert_close(
            state["lora_B"],
            torch.zeros(c["out_f"], c["r"], dtype=c["dtype"]),
            name="lora_B of a fresh adapter",
            rtol=0,
            atol=0,
            hint="B starts at zero so that B @ A = 0 and the adapter starts as a no-op",
        )
    if layer.merged is not False:
        raise CheckFailure(f"a fresh layer should have merged = False, got {layer.merged!r}")
    x = Draw(c["seed"]).tensor(2, c["in_f"], dtype=c["dtype"])
    trainable = set(value_and_grad(layer, [x], torch.ones(2, c["out_f"], dtype=c["dtype"])).params)
    if trainable != {"lora_A", "lora_B"}:
        message = (
            f"{describe(c)}: the trainable parameters should be exactly lora_A and lora_B, "
            f"got {sorted(trainable)}"
        )
        if any(name.startswith("base.") for name in trainable):
            raise mistakes.failure("base_left_trainable", message)
        raise CheckFailure(
            message, hint="freeze the base: p.requires_grad_(False) for every parameter of base"
        )


@pytest.mark.points(1)
def test_lora_A_is_kaiming_uniform(impl, draw):
    in_f, r = 512, 64
    base = support.random_linear(in_f, 16, True, torch.float32, draw.seed)
    a = impl.LoRALinear(base, r, 16.0).state_dict()["lora_A"].to(torch.float64)
    # kaiming_uniform_(a=sqrt(5)): gain sqrt(1/3), bound = sqrt(3) gain / sqrt(fan_in)
    bound = 1 / math.sqrt(in_f)
    largest, std, mean = a.abs().max().item(), a.std().item(), a.mean().item()
    seen = f"max |A| = {largest:.5f}, std {std:.5f}, mean {mean:.5f}"
    expected = f"values in ±{bound:.5f}, std ≈ {bound / math.sqrt(3):.5f} (uniform), mean ≈ 0"
    ok = (
        largest <= bound * (1 + 1e-6)
        and largest >= 0.95 * bound
        and abs(std / (bound / math.sqrt(3)) - 1) < 0.05
        and abs(mean) < 0.05 * bound
    )
    message = f"lora_A of LoRALinear(in={in_f}, r={r}): expected {expected}; got {seen}"
    if not ok and math.sqrt(6) * bound * 0.95 <= largest <= math.sqrt(6) * bound * (1 + 1e-6):
        raise mistakes.failure("a_kaiming_default_a", message)
    if not ok:
        raise CheckFailure(
            message,
            hint="nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5)) (the default a=0 gives a bound "
            "sqrt(6) times larger; normal init exceeds the bound)",
        )


@pytest.mark.points(2)
@settings(max_examples=20)
@given(c=layer_case(), dropout=st.sampled_from([0.0, 0.5]), training=st.booleans())
def test_fresh_adapter_equals_base_exactly(impl, c, dropout, training):
    layer, mine, _, _ = make_layer(impl, c, dropout)
    layer.train(training)
    x = Draw(c["seed"] + 1).tensor(*c["batch"], 5, c["in_f"], dtype=c["dtype"])
    with unchanged(x, names=["x"]):
        out = layer(x)
    if layer.state_dict()["lora_B"].abs().max() > 0:
        suspect = "b_random_init"
    else:  # B is zero: the branch adds nothing, so a difference with dropout on is dropout's
        suspect = "dropout_on_base_path" if training and dropout > 0 else None
    with diagnosed_as(suspect):
        assert_close(
            out,
            mine(x),
            name=f"fresh {describe(c, dropout=dropout, training=training)}(x) vs base(x)",
            rtol=0,
            atol=0,
            hint="B starts at zero, so the output is exactly self.base(x); dropout belongs to the LoRA "
            "branch only, never to the base path",
        )


@pytest.mark.points(3)
@settings(max_examples=30)
@given(c=layer_case(min_r=2), dropout=st.sampled_from([0.0, 0.3]))
def test_forward_matches_the_lora_formula(impl, c, dropout):
    layer, _, w, b = make_layer(impl, c, dropout)
    rng = Draw(c["seed"] + 2)
    a, bb = load_random_adapter(layer, c, rng)
    layer.eval()
    x = rng.tensor(*c["batch"], 4, c["in_f"], dtype=c["dtype"])
    with unchanged(x, names=["x"]):
        out = layer(x)
    second = layer(x)
    with diagnosed_as("dropout_in_eval" if dropout > 0 and not torch.equal(out, second) else None):
        assert_close(
            out,
            support.lora_output(x, w, b, a, bb, c["alpha"] / c["r"]),
            name=f"{describe(c, dropout=dropout)} in eval mode",
            hint="y = base(x) + (alpha / r) * x @ A.T @ B.T; the scale is alpha / r, not alpha",
            suspects=mistakes.on("forward", x, w, b, a, bb, c["r"], c["alpha"]),
        )


@pytest.mark.points(2)
@settings(max_examples=15)
@given(c=layer_case())
def test_gradients_reach_only_A_and_B(impl, c):
    c = {**c, "dtype": torch.float64}
    layer, _, w, bias = make_layer(impl, c)
    rng = Draw(c["seed"] + 3)
    a, b = load_random_adapter(layer, c, rng)
    x = rng.tensor(*c["batch"], 3, c["in_f"], dtype=torch.float64)
    g = rng.tensor(*c["batch"], 3, c["out_f"], dtype=torch.float64)
    _, (dx,), params = value_and_grad(layer, [x], g)
    if set(params) != {"lora_A", "lora_B"}:
        message = f"{describe(c)}: gradients should reach exactly lora_A and lora_B, got {sorted(params)}"
        if any(name.startswith("base.") for name in params):
            raise mistakes.failure("base_left_trainable", message)
        raise CheckFailure(
            message, hint="the base is frozen (requires_grad=False); A and B are trainable nn.Parameters"
        )
    s = c["alpha"] / c["r"]
    x2, g2 = x.reshape(-1, c["in_f"]), g.reshape(-1, c["out_f"])
    hint = "loss gradients of y = base(x) + (alpha / r) x A^T B^T; keep the branch in autograd"
    args = (x, g, w, bias, a, b, c["r"], c["alpha"])
    for name, got, want in (
        ("lora_B", params["lora_B"], s * g2.T @ (x2 @ a.T)),
        ("lora_A", params["lora_A"], s * b.T @ g2.T @ x2),
        ("x", dx, (g2 @ (w + s * b @ a)).reshape(x.shape)),
    ):
        assert_close(
            got,
            want,
            name=f"gradient w.r.t. {name}, {describe(c)}",
            hint=hint,
            suspects=mistakes.on(f"gradient of {name}", *args),
        )


# --- merge and unmerge (5 points) --------------------------------------------


def merge_setup(impl, c, offset):
    """(layer, x, output before any call, the oracle's and the suspects' arguments)."""
    layer, _, w, b = make_layer(impl, c)
    rng = Draw(c["seed"] + offset)
    a, bb = load_random_adapter(layer, c, rng)
    layer.eval()
    x = rng.tensor(*c["batch"], 4, c["in_f"], dtype=c["dtype"])
    return layer, x, layer(x), (x, w, b, a, bb, c["r"], c["alpha"])


def check_merged_flag(layer, expected: bool, after: str) -> None:
    if layer.merged is not expected:
        raise CheckFailure(f"after {after}, merged should be {expected}, got {layer.merged!r}")


def make_calls(layer, calls, args, c, hint: str) -> None:
    """Call ``layer.merge()`` / ``unmerge()`` in the order ``calls`` gives; after each, check
    the flag, base.weight and the output against the formula (``support.after_calls``)."""
    x, w, b, a, bb, r, alpha = args
    for i, call in enumerate(calls):
        getattr(layer, call)()
        done = calls[: i + 1]
        said = "; ".join(f"{name}()" for name in done)
        weight, out, merged = support.after_calls(done, x, w, b, a, bb, alpha / r)
        check_merged_flag(layer, merged, said)
        assert_close(
            layer.state_dict()["base.weight"],
            weight,
            name=f"base.weight after {said} on {describe(c)}",
            hint=hint,
            suspects=mistakes.on("base.weight after calls", done, *args),
        )
        assert_close(
            layer(x),
            out,
            name=f"output after {said} on {describe(c)}",
            hint="merging must not change the output: while merged, forward returns self.base(x) alone",
            suspects=mistakes.on("output after calls", done, *args),
        )


@pytest.mark.points(2)
@settings(max_examples=20)
@given(c=layer_case(min_r=2))
def test_merged_equals_unmerged(impl, c):
    layer, x, before, args = merge_setup(impl, c, 4)
    hint = "merge adds (alpha / r) * B @ A to base.weight, with the same scaling as forward"
    make_calls(layer, ["merge"], args, c, hint)
    assert_close(
        layer(x),
        before,
        name=f"output after merge() vs before, {describe(c)}",
        hint="once merged, forward returns base(x) alone: the update is inside base.weight",
    )


@pytest.mark.points(1)
@settings(max_examples=10)
@given(c=layer_case())
def test_merging_twice_adds_once(impl, c):
    layer, x, before, args = merge_setup(impl, c, 5)
    hint = "merge() on a merged layer must do nothing: check self.merged first"
    make_calls(layer, ["merge", "merge"], args, c, hint)
    assert_close(layer(x), before, name="output after merge() twice vs before")


@pytest.mark.points(2)
@settings(max_examples=15)
@given(c=layer_case(), more=support.merge_calls(max_size=4))
def test_unmerge_restores_the_base(impl, c, more):
    layer, x, before, args = merge_setup(impl, c, 6)
    hint = "unmerge() subtracts exactly what merge() added, once; when not merged it does nothing"
    # Never merged, then a round trip with a second unmerge, then any further calls.
    calls = ["unmerge", "merge", "unmerge", "unmerge", *more]
    make_calls(layer, calls, args, c, hint)
    if calls[-1] == "merge":
        layer.unmerge()
    assert_close(layer(x), before, name=f"output after {'(); '.join(calls)}(); unmerge() vs before")
    # Training goes on after an unmerge: the next merge must use the new B.
    _, w, _, a, *_ = args
    b_new = Draw(c["seed"] + 7).tensor(c["out_f"], c["r"], dtype=c["dtype"])
    layer.load_state_dict({"lora_B": b_new}, strict=False)
    layer.merge()
    new_delta = (c["alpha"] / c["r"]) * b_new.to(torch.float64) @ a.to(torch.float64)
    assert_close(
        layer.state_dict()["base.weight"],
        (w.to(torch.float64) + new_delta).to(c["dtype"]),
        name="base.weight after unmerge, a change of B, then merge()",
        hint="compute the update from the current lora_A and lora_B at each merge",
    )


# --- dropout (2 points) ------------------------------------------------------


@pytest.mark.points(2)
def test_dropout_only_on_the_branch_and_off_in_eval(impl, draw):
    c = dict(in_f=8, out_f=6, r=2, alpha=4.0, bias=True, dtype=torch.float64, batch=(), seed=draw.seed)
    p, n = 0.5, 4000
    layer, _, w, b = make_layer(impl, c, dropout=p)
    a, bb = load_random_adapter(layer, c, draw)
    x = draw.tensor(1, c["in_f"], dtype=torch.float64).expand(n, -1).contiguous()
    expected = support.lora_output(x, w, b, a, bb, c["alpha"] / c["r"])
    layer.eval()
    first, second = layer(x), layer(x)
    with diagnosed_as(None if torch.equal(first, second) else "dropout_in_eval"):
        assert_close(
            first,
            expected,
            name="output in eval mode",
            hint="in eval mode dropout is off",
            suspects=mistakes.on("forward", x, w, b, a, bb, c["r"], c["alpha"]),
        )
    layer.train()
    out = layer(x).detach()
    layer.eval()
    with diagnosed_as("dropout_in_eval"):
        assert_close(
            layer(x), first, name="output in eval mode after a call in training mode", rtol=0, atol=0
        )
    layer.train()
    base_out = expected - (c["alpha"] / c["r"]) * (x @ a.T) @ bb.T
    branch = out - base_out
    if branch.std(dim=0).max().item() < 1e-6:
        raise CheckFailure(
            f"in training mode with dropout={p}, {n} copies of one input gave identical outputs",
            hint="apply nn.Dropout(dropout) to the input of the LoRA branch; it is active in train mode",
        )
    # base(x) + s B (A dropout(x)) - base(x) lies in the column space of B; a dropped base path does not.
    q, _ = torch.linalg.qr(bb)
    outside = branch - (branch @ q) @ q.T
    if outside.abs().max().item() > 1e-8:
        raise mistakes.failure(
            "dropout_on_base_path",
            "in training mode the output minus base(x) should be B @ (something): only the LoRA "
            f"branch may see dropout, but it differs from the span of B by up to {outside.abs().max():.3g}",
            hint="dropout goes on the LoRA branch's input, never on the base path: "
            "self.base(x) + scaling * self.dropout(x) @ A.T @ B.T",
        )
    mean, stderr = branch.mean(dim=0), branch.std(dim=0) / math.sqrt(n)
    want = (expected - base_out)[0]
    if ((mean - want).abs() > 6 * stderr + 1e-9).any():
        raise CheckFailure(
            f"in training mode the LoRA branch should equal its eval value on average (inverted dropout "
            f"rescales by 1 / (1 - p)): mean over {n} samples {mean.tolist()}, expected {want.tolist()}",
            hint="use nn.Dropout (it scales the kept inputs by 1 / (1 - p))",
        )


# --- apply_lora and trainable_parameters (6 points) --------------------------


@pytest.mark.points(2)
@settings(max_examples=8)
@given(case=support.targets_case())
def test_apply_lora_wraps_the_targets_and_freezes_the_rest(impl, case):
    targets, r, alpha, seed = case
    model = support.tiny_transformer(seed)
    original = copy.deepcopy(model)
    before = original.state_dict()
    linears = support.linear_shapes(original)
    wrapped = {name for name in linears if name.rsplit(".", 1)[-1] in targets}
    tokens = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(seed))
    adapted = impl.apply_lora(model, targets, r=r, alpha=alpha)
    state = adapted.state_dict()
    expected_keys = set()
    for key in before:
        layer, _, kind = key.rpartition(".")
        expected_keys.add(f"{layer}.base.{kind}" if layer in wrapped else key)
    expected_keys |= {f"{name}.lora_{m}" for name in wrapped for m in "AB"}
    if set(state) != expected_keys:
        extra, missing = sorted(set(state) - expected_keys), sorted(expected_keys - set(state))
        raise CheckFailure(
            f"apply_lora(targets={targets}): state_dict keys differ; "
            f"unexpected {extra[:6]}, missing {missing[:6]}",
            hint="match nn.Linear layers by the last component of their name and replace each in its "
            "parent: setattr(parent, child_name, LoRALinear(layer, r, alpha, dropout))",
        )
    for key, value in before.items():
        layer, _, kind = key.rpartition(".")
        new_key = f"{layer}.base.{kind}" if layer in wrapped else key
        assert_close(state[new_key], value, name=new_key, rtol=0, atol=0, hint="apply_lora changes no weight")
    trainable = set(trainable_names(adapted, tokens))
    want = {f"{name}.lora_{m}" for name in wrapped for m in "AB"}
    if trainable != want:
        extra = sorted(trainable - want)
        message = (
            f"apply_lora(targets={targets}): trainable parameters should be exactly the LoRA ones; "
            f"also trainable: {extra[:6]}, not trainable: {sorted(want - trainable)[:6]}"
        )
        if extra:
            bases = all(".base." in name for name in extra)
            raise mistakes.failure("base_left_trainable" if bases else "rest_left_trainable", message)
        raise CheckFailure(
            message, hint="freeze every parameter of the model, then add the adapters (their A and B train)"
        )
    nonzero_b = any(state[f"{name}.lora_B"].abs().max() > 0 for name in wrapped)
    with diagnosed_as("b_random_init" if nonzero_b else None):
        assert_close(
            adapted(tokens),
            original(tokens),
            name=f"the adapted model's output (targets {targets}) vs the original's",
            hint="a fresh adapter must not change the model",
        )


def trainable_names(model, tokens) -> list[str]:
    """Names of the parameters that receive gradients, from value_and_grad on the learner's model."""
    weights = torch.ones(*tokens.shape, 50)
    return list(value_and_grad(model, [], weights, kwargs={"tokens": tokens}).params)


@pytest.mark.points(1)
@settings(max_examples=8)
@given(case=support.targets_case())
def test_trainable_parameters_counts_r_times_in_plus_out(impl, case):
    targets, r, alpha, seed = case
    model = support.tiny_transformer(seed)
    total = sum(p.numel() for p in model.parameters())
    linears = support.linear_shapes(model)
    count = impl.trainable_parameters(model)
    if type(count) is not int or count != total:
        raise CheckFailure(
            f"trainable_parameters of a model with nothing frozen: expected the int {total}, got {count!r}",
            hint="sum p.numel() over the parameters with requires_grad=True, as a Python int",
        )
    original = copy.deepcopy(model)
    adapted = impl.apply_lora(model, targets, r=r, alpha=alpha)
    want = sum(r * (i + o) for name, (i, o) in linears.items() if name.rsplit(".", 1)[-1] in targets)
    count = impl.trainable_parameters(adapted)
    if type(count) is int and count != want:
        check_equal(
            count,
            want,
            name=f"trainable_parameters after apply_lora(targets={targets}, r={r})",
            hint="only lora_A (r x in) and lora_B (out x r) train; the bases and everything else are frozen",
            suspects=mistakes.on(support.COUNT, original, targets, r),
        )
    if type(count) is not int or count != want:
        raise CheckFailure(
            f"trainable_parameters after apply_lora(targets={targets}, r={r}): expected {want} "
            f"(r * (in + out) per wrapped layer), got {count!r}",
            hint="only lora_A (r x in) and lora_B (out x r) train; the bases and everything else are frozen",
        )


@pytest.mark.points(1)
def test_apply_lora_with_no_match_raises(impl, draw):
    model = support.tiny_transformer(draw.seed)
    keys = set(model.state_dict())
    targets = ["q_porj", "value"]
    with pytest.raises(ValueError) as info:
        impl.apply_lora(model, targets, r=2, alpha=4.0)
    message = str(info.value)
    if not all(t in message for t in targets) or "q_proj" not in message:
        raise CheckFailure(
            f"the ValueError should name the targets {targets} and list the model's nn.Linear layers "
            f"(e.g. blocks.0.attn.q_proj); its message was: {message!r}",
            hint="a typo in a target name should be easy to spot from the message",
        )
    if set(model.state_dict()) != keys or impl.trainable_parameters(model) != sum(
        p.numel() for p in model.parameters()
    ):
        raise CheckFailure(
            "apply_lora raised, yet it had already changed the model (wrapped or froze layers)",
            hint="find the matches first and raise before touching the model",
        )


@pytest.mark.points(2)
def test_optimiser_steps_leave_the_base_unchanged(impl, draw):
    # One layer on its own ...
    c = dict(in_f=10, out_f=7, r=3, alpha=6.0, bias=True, dtype=torch.float32, batch=(), seed=draw.seed)
    layer, _, w, b = make_layer(impl, c, dropout=0.1)
    layer.train()
    x, y = draw.tensor(16, 10), draw.tensor(16, 7)
    support.finetune(layer, x, y, steps=2, lr=1e-2)
    state = layer.state_dict()
    hint = "the base is frozen: requires_grad=False on base.weight and base.bias, so no optimiser moves it"
    assert_close(state["base.weight"], w, name="base.weight after 2 Adam steps", rtol=0, atol=0, hint=hint)
    assert_close(state["base.bias"], b, name="base.bias after 2 Adam steps", rtol=0, atol=0, hint=hint)
    if not state["lora_B"].abs().max() > 0:
        raise CheckFailure("lora_B is still zero after 2 Adam steps", hint="gradients must reach lora_B")
    # ... and a whole model.
    model = support.tiny_transformer(draw.seed)
    before = copy.deepcopy(model).state_dict()
    adapted = impl.apply_lora(model, ["q_proj", "v_proj", "up_proj"], r=2, alpha=4.0, dropout=0.1)
    adapted.train()
    tokens = torch.randint(0, 50, (2, 6), generator=draw.generator)
    support.finetune(adapted, tokens, draw.tensor(2, 6, 50), steps=2, lr=1e-2)
    state = adapted.state_dict()
    for key, value in before.items():
        layer_name, _, kind = key.rpartition(".")
        new_key = key if key in state else f"{layer_name}.base.{kind}"
        assert_close(
            state.get(new_key),
            value,
            name=f"{new_key} after 2 Adam steps on the adapted model",
            rtol=0,
            atol=0,
            hint="apply_lora freezes every parameter except lora_A and lora_B",
        )


# --- fine-tuning (3 points) --------------------------------------------------

FINETUNE_STEPS, FINETUNE_LR, FINETUNE_MARGIN = 60, 1e-2, 0.4


@pytest.mark.points(3)
@settings(max_examples=3)
@given(seed=SEEDS, rank=st.sampled_from([(2, 4.0), (4, 8.0), (8, 8.0)]))
def test_lora_finetuning_lowers_the_loss(impl, seed, rank):
    r, alpha = rank
    task = support.toy_task(seed)
    start = support.mse(task.model(task.x), task.y)  # the frozen model's loss
    model = impl.apply_lora(task.model, list(task.targets), r=r, alpha=alpha)
    losses = support.finetune(model, task.x, task.y, steps=FINETUNE_STEPS, lr=FINETUNE_LR)
    if not losses[-1] <= FINETUNE_MARGIN * start:
        raise CheckFailure(
            f"LoRA (r={r}, alpha={alpha}) on fc1 and fc2 of the toy MLP, {FINETUNE_STEPS} Adam steps at "
            f"lr {FINETUNE_LR}: the loss went from {start:.4g} (frozen model) to {losses[-1]:.4g}; "
            f"expected at most {FINETUNE_MARGIN} x {start:.4g} = {FINETUNE_MARGIN * start:.4g}",
            hint="gradients must reach lora_A and lora_B; scale by alpha / r; B starts at zero, A does not",
        )
