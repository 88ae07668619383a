"""Public tests for exercise 5.1 (LoRA). Run: pytest exercises/section5

They draw sizes, ranks, alphas, dtypes and batch shapes at random (a few examples each)
and compare your layer with the LoRA formula written out in float64: a fresh adapter,
the forward pass and its gradients, dropout in training and in eval mode, merge() and
unmerge() in any order, apply_lora on a small transformer and a short fine-tuning run.
When a check fails it says which known mistake your output looks like. The hidden
graders draw more examples and also check the initialisation's spread, inputs left
unchanged, optimiser steps on a whole model and the statistics of dropout.
"""

import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    CheckFailure,
    Draw,
    assert_close,
    check_equal,
    load_support,
    value_and_grad,
)

pytestmark = pytest.mark.exercise("5.1")
support = load_support("5.1")
mistakes = support.MISCONCEPTIONS
diagnosed_as = support.diagnosed_as
# Tried first by every hypothesis test below: a small case where each known mistake shows.
CASE = dict(in_f=5, out_f=4, r=3, alpha=8.0, bias=True, dtype=torch.float32, batch=(2,), seed=1)


@settings(max_examples=8)
@given(c=support.layer_case())
@example(c=CASE)
def test_fresh_adapter_returns_the_base_exactly(impl, c):
    layer, mine, _, _ = support.make_layer(impl, c, dropout=0.5)
    state = layer.state_dict()
    for key, shape in (("lora_A", (c["r"], c["in_f"])), ("lora_B", (c["out_f"], c["r"]))):
        got = state.get(key)
        if got is None or tuple(got.shape) != shape or got.dtype != c["dtype"]:
            seen = "missing" if got is None else f"{tuple(got.shape)} {got.dtype}"
            raise CheckFailure(
                f"{support.describe(c)}: {key} should be {shape} {c['dtype']}, got {seen}",
                hint="A is (r, in_features), B is (out_features, r), both in the base weight's dtype",
            )
    if layer.merged is not False:
        raise CheckFailure(f"a fresh layer should have merged = False, got {layer.merged!r}")
    x = Draw(c["seed"]).tensor(*c["batch"], 5, c["in_f"], dtype=c["dtype"])
    for training in (False, True):  # eval first: then a failure in training mode is the dropout's
        layer.train(training)
        mode = "training" if training else "eval"
        if layer.state_dict()["lora_B"].abs().max() > 0:
            suspect = "b_random_init"
        else:  # B is zero, so the branch adds nothing: a difference in training mode is dropout's
            suspect = "dropout_on_base_path" if training else None
        with diagnosed_as(suspect):
            assert_close(
                layer(x),
                mine(x),
                name=f"fresh {support.describe(c, dropout=0.5)} in {mode} mode vs base(x)",
                rtol=0,
                atol=0,
                hint="lora_B starts at zero, so a fresh adapter returns exactly self.base(x)",
            )


def test_lora_A_starts_like_a_linear_weight(impl, draw):
    in_f, r = 256, 16
    base = support.random_linear(in_f, 8, True, torch.float32, draw.seed)
    a = impl.LoRALinear(base, r, 16.0).state_dict()["lora_A"].to(torch.float64)
    bound = 1 / math.sqrt(in_f)  # kaiming_uniform_(a=sqrt(5)): bound sqrt(3) * sqrt(1/3) / sqrt(fan_in)
    largest = a.abs().max().item()
    message = (
        f"lora_A of LoRALinear(in_features={in_f}, r={r}): values should lie in ±1/sqrt(in_features) = "
        f"±{bound:.5f} and fill it (uniform); got max |A| = {largest:.5f}, std {a.std().item():.5f}"
    )
    if largest <= bound * (1 + 1e-6) and largest >= 0.9 * bound:
        return
    if math.sqrt(6) * bound * 0.9 <= largest <= math.sqrt(6) * bound * (1 + 1e-6):
        raise mistakes.failure("a_kaiming_default_a", message)
    raise CheckFailure(message, hint="nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))")


@settings(max_examples=10)
@given(c=support.layer_case(min_r=2))
@example(c=CASE)
def test_forward_matches_the_lora_formula(impl, c):
    layer, _, w, b = support.make_layer(impl, c)
    rng = Draw(c["seed"] + 1)
    a, bb = support.load_random_adapter(layer, c, rng)
    layer.eval()
    x = rng.tensor(*c["batch"], 4, c["in_f"], dtype=c["dtype"])
    assert_close(
        layer(x),
        support.lora_output(x, w, b, a, bb, c["alpha"] / c["r"]),
        name=f"{support.describe(c)}(x) with non-zero A and B, x {tuple(x.shape)}",
        hint="y = base(x) + (alpha / r) * x @ A.T @ B.T",
        suspects=mistakes.on("forward", x, w, b, a, bb, c["r"], c["alpha"]),
    )


@settings(max_examples=6)
@given(c=support.layer_case(min_r=2, dtypes=st.just(torch.float64)))
@example(c={**CASE, "dtype": torch.float64})
def test_only_A_and_B_train_and_get_the_right_gradients(impl, c):
    layer, _, w, b = support.make_layer(impl, c)
    rng = Draw(c["seed"] + 2)
    a, bb = support.load_random_adapter(layer, c, rng)
    x = rng.tensor(*c["batch"], 3, c["in_f"], dtype=torch.float64)
    g = rng.tensor(*c["batch"], 3, c["out_f"], dtype=torch.float64)
    _, (dx,), params = value_and_grad(layer, [x], g)
    if set(params) != {"lora_A", "lora_B"}:
        message = (
            f"{support.describe(c)}: the trainable parameters (those that get gradients) should be "
            f"exactly lora_A and lora_B, got {sorted(params)}"
        )
        if any(name.startswith("base.") for name in params):
            raise mistakes.failure("base_left_trainable", message)
        raise CheckFailure(message, hint="lora_A and lora_B are nn.Parameters; the base is frozen")
    expected = support.lora_gradients(x, g, w, b, a, bb, c["alpha"] / c["r"])
    for name, got in (("lora_A", params["lora_A"]), ("lora_B", params["lora_B"]), ("x", dx)):
        assert_close(
            got,
            expected[name],
            name=f"gradient of sum(g * y) w.r.t. {name}, {support.describe(c)}",
            hint="keep the branch in autograd: no .detach(), no torch.no_grad() in forward",
            suspects=mistakes.on(f"gradient of {name}", x, g, w, b, a, bb, c["r"], c["alpha"]),
        )


def test_dropout_only_on_the_branch_and_only_in_training(impl, draw):
    c = dict(in_f=8, out_f=6, r=2, alpha=3.0, bias=True, dtype=torch.float64, batch=(), seed=draw.seed)
    layer, _, w, b = support.make_layer(impl, c, dropout=0.5)
    a, bb = support.load_random_adapter(layer, c, draw)
    x = draw.tensor(1, c["in_f"], dtype=torch.float64).expand(64, -1).contiguous()
    expected = support.lora_output(x, w, b, a, bb, c["alpha"] / c["r"])
    base_out = support.lora_output(x, w, b, a, bb, 0.0)
    for switch in ("eval()", "train(); eval()"):  # eval mode must hold after a training phase too
        if switch != "eval()":
            layer.train()
            layer(x)
        layer.eval()
        first, second = layer(x), layer(x)
        with diagnosed_as(None if torch.equal(first, second) else "dropout_in_eval"):
            assert_close(
                first,
                expected,
                name=f"output in eval mode (after {switch}) with dropout=0.5",
                hint="in eval mode dropout is off: the output is the formula, the same at every call",
                suspects=mistakes.on("forward", x, w, b, a, bb, c["r"], c["alpha"]),
            )
    layer.train()
    branch = layer(x).detach() - base_out
    if branch.std(dim=0).max().item() < 1e-9:
        raise CheckFailure(
            "in training mode with dropout=0.5, 64 copies of one input gave identical outputs",
            hint="apply nn.Dropout(dropout) to the input of the LoRA branch; it is active in train mode",
        )
    # base(x) + s * dropout(x) A^T B^T - base(x) lies in the span of B's columns; a dropped base does not.
    q, _ = torch.linalg.qr(bb)
    outside = (branch - (branch @ q) @ q.T).abs().max().item()
    if outside > 1e-8:
        raise mistakes.failure(
            "dropout_on_base_path",
            "in training mode, output - base(x) should be (something) @ B.T: only the LoRA branch sees "
            f"dropout, but it leaves the span of B's columns by up to {outside:.3g}",
        )


@settings(max_examples=10)
@given(c=support.layer_case(min_r=2), calls=support.merge_calls())
@example(c=CASE, calls=["unmerge", "merge", "merge", "unmerge", "unmerge", "merge"])
def test_merge_and_unmerge_in_any_order(impl, c, calls):
    layer, _, w, b = support.make_layer(impl, c)
    rng = Draw(c["seed"] + 3)
    a, bb = support.load_random_adapter(layer, c, rng)
    layer.eval()
    x = rng.tensor(*c["batch"], 4, c["in_f"], dtype=c["dtype"])
    args = (x, w, b, a, bb, c["r"], c["alpha"])
    assert_close(
        layer(x),
        support.lora_output(x, w, b, a, bb, c["alpha"] / c["r"]),
        name=f"{support.describe(c)}(x) before any merge()",
        suspects=mistakes.on("forward", *args),
    )
    for i in range(len(calls)):
        done = calls[: i + 1]
        getattr(layer, calls[i])()
        said = "; ".join(f"{call}()" for call in done)
        weight, out, merged = support.after_calls(done, x, w, b, a, bb, c["alpha"] / c["r"])
        assert_close(
            layer.state_dict()["base.weight"],
            weight,
            name=f"base.weight after {said} on {support.describe(c)}",
            hint="merge adds (alpha / r) * B @ A once; unmerge subtracts it once; each checks self.merged",
            suspects=mistakes.on("base.weight after calls", done, *args),
        )
        check_equal(layer.merged, merged, name=f"layer.merged after {said}")
        assert_close(
            layer(x),
            out,
            name=f"output after {said} on {support.describe(c)}",
            hint="merging must not change the output: while merged, forward returns self.base(x) alone",
            suspects=mistakes.on("output after calls", done, *args),
        )


@settings(max_examples=4)
@given(case=support.targets_case())
@example(case=(["q_proj", "v_proj"], 2, 3.5, 1))
def test_apply_lora_wraps_the_targets_and_freezes_the_rest(impl, case):
    targets, r, alpha, seed = case
    model = support.tiny_transformer(seed)
    original = support.tiny_transformer(seed)
    wrapped = {n for n in support.linear_shapes(original) if n.rsplit(".", 1)[-1] in targets}
    tokens = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(seed))
    adapted = impl.apply_lora(model, targets, r=r, alpha=alpha)
    keys = set(adapted.state_dict())
    for name in sorted(wrapped):
        for suffix in ("base.weight", "lora_A", "lora_B"):
            if f"{name}.{suffix}" not in keys:
                raise CheckFailure(
                    f"apply_lora(targets={targets}): expected {name}.{suffix} in the adapted model's "
                    f"state_dict; it has {sorted(k for k in keys if k.startswith(name))}",
                    hint="replace each match in its parent: setattr(parent, child_name, LoRALinear(...))",
                )
    untouched = [k for k in original.state_dict() if k.rpartition(".")[0] not in wrapped]
    missing = [k for k in untouched if k not in keys]
    if missing:
        raise CheckFailure(
            f"apply_lora(targets={targets}): layers that are not targets must stay as they are; "
            f"missing {missing[:4]}",
            hint="a layer matches when the last component of its name is one of the targets",
        )
    check_equal(
        impl.trainable_parameters(adapted),
        support.lora_count(original, targets, r)["lora"],
        name=f"trainable_parameters after apply_lora(targets={targets}, r={r})",
        hint="only lora_A (r x in) and lora_B (out x r) train: r * (in + out) per wrapped layer",
        suspects=mistakes.on(support.COUNT, original, targets, r),
    )
    weights = torch.ones(2, 7, 50)
    trainable = set(value_and_grad(adapted, [], weights, kwargs={"tokens": tokens}).params)
    extra = sorted(trainable - {f"{n}.lora_{m}" for n in wrapped for m in "AB"})
    if extra:
        message = f"apply_lora(targets={targets}): these parameters still get gradients: {extra[:6]}"
        bases = all(".base." in name for name in extra)
        raise mistakes.failure("base_left_trainable" if bases else "rest_left_trainable", message)
    state = adapted.state_dict()
    nonzero_b = any(state[f"{n}.lora_B"].abs().max() > 0 for n in wrapped)
    with diagnosed_as("b_random_init" if nonzero_b else None):
        assert_close(
            adapted(tokens),
            original(tokens),
            name=f"the adapted model's output (targets {targets}) vs the original's",
            hint="a fresh adapter must not change the model",
        )


def test_apply_lora_rejects_unknown_targets(impl, draw):
    model = support.tiny_transformer(seed=draw.seed)
    keys = set(model.state_dict())
    with pytest.raises(ValueError) as info:
        impl.apply_lora(model, ["q_porj"], r=2, alpha=4.0)
    message = str(info.value)
    if "q_porj" not in message or "q_proj" not in message:
        raise CheckFailure(
            "the ValueError should name the target 'q_porj' and list the model's nn.Linear layers "
            f"(e.g. blocks.0.attn.q_proj); its message was: {message!r}",
            hint="a typo in a target name should be easy to spot from the message",
        )
    if set(model.state_dict()) != keys:
        raise CheckFailure("apply_lora raised, yet it had already changed the model")


def test_finetuning_lowers_the_loss(impl, draw):
    task = support.toy_task(draw.seed)
    model = impl.apply_lora(task.model, list(task.targets), r=4, alpha=8.0)
    losses = support.finetune(model, task.x, task.y, steps=40, lr=1e-2)
    if not losses[-1] <= 0.5 * losses[0]:
        raise CheckFailure(
            f"40 Adam steps (lr 1e-2) took the loss from {losses[0]:.4g} to {losses[-1]:.4g}; "
            "expected at most 0.5x the starting loss",
            hint="gradients must reach lora_A and lora_B (no .detach(), B starts at zero, A does not)",
        )
