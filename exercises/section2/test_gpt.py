"""Public tests for exercise 2.4 (a GPT from your own parts). Run: pytest exercises/section2/test_gpt.py

Each part is compared with torch's own: nn.RMSNorm, a block and a model assembled from
nn.RMSNorm, nn.MultiheadAttention and nn.Linear holding your weights, F.cross_entropy,
torch.optim.AdamW step for step, torch's LR schedulers, and a training loop written with
them. When a check fails it says which known mistake your output looks like. The hidden
graders draw more cases and also train your GPT on a Markov source until it is within
0.15 nats of the source's entropy rate (`llmkit show 2.4` draws that run).
"""

import pytest
import torch
from hypothesis import example, given, settings

from llmkit.catalog import find_project_root, load_catalog
from llmkit.testing import Draw, assert_close, check_equal, load_support, value_and_grad

pytestmark = pytest.mark.exercise("2.4")
support = load_support("2.4")
mistakes = support.MISCONCEPTIONS


@settings(max_examples=10)
@given(c=support.norm_case())
def test_rmsnorm_matches_torch(impl, c):
    rng, x, norm, torch_norm = support.rmsnorm_pair(impl, c)
    assert_close(
        norm(x),
        torch_norm(x),
        name=f"RMSNorm(d={c['d']}, eps={c['eps']}) on x of shape {tuple(x.shape)} and scale {c['scale']}",
        suspects=mistakes.on("RMSNorm", x, torch_norm.weight.detach(), c["eps"]),
    )


@settings(max_examples=5)
@given(c=support.block_case())
def test_swiglu_matches_the_formula(impl, c):
    state = support.random_block_state(c["d"], c["hidden"], c["seed"], c["dtype"])
    mlp_state = {k.removeprefix("mlp."): v for k, v in state.items() if k.startswith("mlp.")}
    mlp = impl.SwiGLU(c["d"], c["hidden"]).to(c["dtype"])
    mlp.load_state_dict(mlp_state)
    x = Draw(c["seed"]).tensor(c["b"], c["t"], c["d"], dtype=c["dtype"])
    w1, w3, w2 = (torch.nn.Linear(1, 1, bias=False) for _ in range(3))
    for lin, name in zip((w1, w3, w2), ("w1", "w3", "w2")):
        lin.weight = torch.nn.Parameter(mlp_state[f"{name}.weight"])
    assert_close(
        mlp(x),
        w2(torch.nn.functional.silu(w1(x)) * w3(x)),
        name=f"SwiGLU(d={c['d']}, hidden={c['hidden']})",
        suspects=mistakes.on("SwiGLU", mlp_state, x),
    )


@settings(max_examples=6)
@given(c=support.block_case())
def test_block_matches_a_torch_block(impl, c):
    block, state = support.learner_block(impl, c)
    x = Draw(c["seed"] + 1).tensor(c["b"], c["t"], c["d"], dtype=c["dtype"])
    assert_close(
        block(x),
        support.torch_block(state, c["d"], c["n_heads"], c["hidden"], c["dtype"])(x),
        name=f"Block(d={c['d']}, n_heads={c['n_heads']}, hidden={c['hidden']}) on x {tuple(x.shape)}",
        hint="x = x + attn(norm1(x), mask=causal); x = x + mlp(norm2(x)), causal = ones(T, T).tril()",
        suspects=mistakes.on("Block", state, x, c["n_heads"], c["hidden"]),
    )


@settings(max_examples=3)
@given(c=support.gpt_case())
def test_gpt_matches_a_torch_model_and_ties_its_embeddings(impl, c):
    model, state = support.learner_gpt(impl, c, torch.float64)
    idx = torch.randint(0, c["vocab"], (c["b"], c["t"]), generator=torch.Generator().manual_seed(c["seed"]))
    reference = support.torch_gpt(state, *support.gpt_args(c), c["hidden"], torch.float64)
    weights = Draw(c["seed"]).tensor(c["b"], c["t"], c["vocab"], dtype=torch.float64)
    got = value_and_grad(model, [idx], weights)
    want = value_and_grad(reference, [idx], weights)
    assert_close(
        got.output,
        want.output,
        name=f"GPT logits ({support.describe_gpt(c)})",
        suspects=mistakes.on("GPT", state, idx, c),
    )
    assert "lm_head.weight" not in got.params, (
        "lm_head.weight is a parameter of its own: tie it, self.lm_head.weight = self.tok_emb.weight"
    )
    assert_close(
        got.params.get("tok_emb.weight"),
        reference.learner_named(want.params)["tok_emb.weight"],
        name="gradient w.r.t. tok_emb.weight (the input embedding and the tied output layer)",
    )


def test_logits_at_a_position_ignore_later_tokens(impl):
    c = dict(vocab=7, d=8, n_layers=2, n_heads=2, context=6, hidden=12, seed=5)
    model, _ = support.learner_gpt(impl, c, torch.float64)
    idx = torch.tensor([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]])
    changed = idx.clone()
    changed[:, 3:] = torch.tensor([0, 0, 0])
    before, after = model(idx), model(changed)
    assert_close(after[:, :3], before[:, :3], name="logits at positions 0..2 after changing tokens 3..5")


@settings(max_examples=10)
@given(c=support.cross_entropy_case())
@example(c=support.CROSS_ENTROPY_WITH_IGNORED)
def test_cross_entropy_matches_torch(impl, c):
    logits, targets = support.cross_entropy_inputs(c)
    assert_close(
        impl.cross_entropy(logits, targets, ignore_index=c["ignore_index"]),
        support.torch_cross_entropy(logits, targets, c["ignore_index"]),
        name=f"cross_entropy(logits {tuple(logits.shape)} at scale {c['scale']}, ignore_index="
        f"{c['ignore_index']}, {int((targets == c['ignore_index']).sum())} targets ignored)",
        suspects=mistakes.on("cross_entropy", logits, targets, ignore_index=c["ignore_index"]),
    )


def test_cross_entropy_at_1000x_logits(impl):
    logits = torch.tensor([[1000.0, -1000.0, 999.0], [-1000.0, -1000.0, -999.0]])
    targets = torch.tensor([2, 0])
    assert_close(
        impl.cross_entropy(logits, targets),
        support.torch_cross_entropy(logits, targets),
        name="cross_entropy of logits near ±1000",
        suspects=mistakes.on("cross_entropy", logits, targets),
    )


@pytest.mark.parametrize("setting", support.ADAMW_SETTINGS[:3])
def test_adamw_matches_torch_step_for_step(impl, setting):
    params, grads = support.optimizer_problem(seed=3, steps=12)
    support.check_adamw(impl, setting, params, grads)


def test_lr_schedule_warms_up_then_decays(impl):
    total, max_lr, warmup, min_lr = 30, 1e-2, 5, 1e-3
    got = [impl.lr_schedule(s, total, max_lr, warmup, min_lr) for s in range(total)]
    assert_close(
        torch.tensor(got, dtype=torch.float64),
        torch.tensor(support.schedule_oracle(total, max_lr, warmup, min_lr), dtype=torch.float64),
        name=f"lr_schedule(step, {total}, {max_lr}, {warmup}, {min_lr}) for steps 0..{total - 1}",
        hint="warm-up: max_lr * (step + 1) / warmup_steps; then a half cosine from max_lr to min_lr",
    )


def test_train_matches_a_torch_loop_step_for_step(impl):
    c = dict(vocab=5, d=4, n_layers=1, n_heads=2, context=6, hidden=6, seed=11)
    hyper = dict(max_lr=5e-2, warmup_steps=2, min_lr=5e-3, weight_decay=0.1)
    support.check_train(impl, c, batch=3, steps=6, hyper=hyper)


def test_block_with_your_2_3_attention_equals_the_fallback(impl, impl_root):
    c = dict(d=8, n_heads=2, hidden=12, b=2, t=5, dtype=torch.float64, seed=7)
    fallback, _ = support.learner_block(impl, c)
    attention = impl_root.load(load_catalog(find_project_root()).get("2.3")).MultiHeadAttention
    try:
        attention(8, 2, bias=False)(torch.zeros(1, 3, 8))
    except NotImplementedError:
        pytest.skip("2.3 not done: your GPT uses the torch fallback attention (FallbackAttention)")
    yours, _ = support.learner_block(impl, c, attention=attention)
    x = Draw(3).tensor(2, 5, 8, dtype=torch.float64)
    assert_close(
        yours(x),
        fallback(x),
        name="Block with your 2.3 MultiHeadAttention vs with FallbackAttention",
        hint="run pytest exercises/section2/test_attention.py: your 2.3 attention and torch's disagree",
    )


def test_capstone_runs_a_few_steps(impl):
    out = support.capstone(
        impl, None, steps=2, chars=3000, d=8, n_layers=1, n_heads=2, context=16, batch=2, sample_tokens=5
    )
    check_equal(len(out["losses"]), 2, name="number of losses the capstone's train() returned")
    assert all(isinstance(s, str) and s.startswith("The ") for s in out["samples"])
