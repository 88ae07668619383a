"""Public tests for exercise 5.1 (LoRA). Run: pytest exercises/section5

These check the basics on small fixed sizes. The hidden graders check much
more (random sizes and dtypes, the initialisation, gradients, dropout,
merging twice, optimiser steps, a whole transformer-like model).
"""

import pytest
import torch

from llmkit.testing import CheckFailure, assert_close, load_support

pytestmark = pytest.mark.exercise("5.1")
support = load_support("5.1")


def test_fresh_adapter_shapes_and_output(impl, draw):
    base = support.random_linear(6, 5, bias=True, dtype=torch.float32, seed=draw.seed)
    layer = impl.LoRALinear(base, r=3, alpha=6.0)
    state = layer.state_dict()
    assert tuple(state["lora_A"].shape) == (3, 6), "lora_A must have shape (r, in_features)"
    assert tuple(state["lora_B"].shape) == (5, 3), "lora_B must have shape (out_features, r)"
    x = draw.tensor(4, 6)
    assert_close(
        layer(x),
        base(x),
        name="fresh LoRALinear(x)",
        rtol=0.0,
        atol=0.0,
        hint="lora_B starts at zero, so a fresh adapter changes nothing; call self.base(x)",
    )


def test_forward_uses_alpha_over_r(impl, draw):
    base = support.random_linear(8, 4, bias=True, dtype=torch.float64, seed=draw.seed)
    layer = impl.LoRALinear(base, r=4, alpha=2.0)
    a, b = draw.tensor(4, 8, dtype=torch.float64), draw.tensor(4, 4, dtype=torch.float64)
    layer.load_state_dict({"lora_A": a, "lora_B": b}, strict=False)
    x = draw.tensor(3, 8, dtype=torch.float64)
    assert_close(
        layer(x),
        support.lora_output(x, base.weight, base.bias, a, b, scaling=2.0 / 4),
        name="LoRALinear(x) with non-zero A and B",
        hint="y = base(x) + (alpha / r) * x @ A.T @ B.T",
    )


def test_merge_and_unmerge_keep_the_output(impl, draw):
    base = support.random_linear(8, 6, bias=False, dtype=torch.float32, seed=draw.seed)
    w0 = base.weight.detach().clone()
    layer = impl.LoRALinear(base, r=2, alpha=4.0)
    layer.load_state_dict({"lora_B": draw.tensor(6, 2)}, strict=False)
    x = draw.tensor(5, 8)
    before = layer(x)
    layer.merge()
    assert layer.merged is True, "merge() must set merged = True"
    assert_close(layer(x), before, name="output after merge()", hint="merge adds (alpha / r) * B @ A to W")
    layer.unmerge()
    assert layer.merged is False, "unmerge() must set merged = False"
    assert_close(layer.state_dict()["base.weight"], w0, name="base.weight after merge() then unmerge()")
    assert_close(layer(x), before, name="output after unmerge()")


def test_apply_lora_wraps_targets_and_freezes_the_rest(impl, draw):
    model = support.tiny_transformer(seed=draw.seed)
    shapes = support.linear_shapes(model)
    adapted = impl.apply_lora(model, ["q_proj", "v_proj"], r=4, alpha=8.0)
    keys = set(adapted.state_dict())
    for name in ("blocks.0.attn.q_proj", "blocks.1.attn.v_proj"):
        for suffix in ("base.weight", "lora_A", "lora_B"):
            assert f"{name}.{suffix}" in keys, f"expected {name}.{suffix} in the adapted model's state_dict"
    assert "blocks.0.attn.k_proj.weight" in keys, "k_proj is not a target and must stay a plain nn.Linear"
    expected = sum(4 * (i + o) for name, (i, o) in shapes.items() if name.endswith(("q_proj", "v_proj")))
    count = impl.trainable_parameters(adapted)
    assert count == expected, (
        f"trainable_parameters: expected {expected} (r * (in + out) per layer), got {count}"
    )


def test_apply_lora_rejects_unknown_targets(impl, draw):
    model = support.tiny_transformer(seed=draw.seed)
    with pytest.raises(ValueError, match="query"):
        impl.apply_lora(model, ["query"], r=2, alpha=4.0)


def test_finetuning_lowers_the_loss(impl, draw):
    task = support.toy_task(draw.seed)
    model = impl.apply_lora(task.model, list(task.targets), r=4, alpha=8.0)
    losses = support.finetune(model, task.x, task.y, steps=60, lr=1e-2)
    if not losses[-1] <= 0.4 * losses[0]:
        raise CheckFailure(
            f"60 Adam steps (lr 1e-2) took the loss from {losses[0]:.4g} to {losses[-1]:.4g}; "
            "expected at most 0.4x the starting loss",
            hint="gradients must reach lora_A and lora_B (no .detach(), B starts at zero, A does not)",
        )
