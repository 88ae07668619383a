"""Public tests for exercise 0.3 (seq2seq with additive attention). Run: pytest exercises/section0

The attention is compared with a closed-form oracle on random shapes and masks (a few
examples each: B > 1, padding, no mask, float32 and float64). The model is checked on
one small fixed model against logits pasted from the graders' oracle, and on random
models for what every correct model does: padding changes nothing, step t attends
before it reads its input, greedy decoding agrees with teacher forcing. When a check
fails it says which known mistake your output looks like. The hidden graders draw
many more models, check gradients, and train yours to reverse sequences.
"""

import pytest
import torch
from hypothesis import given, settings

from llmkit.testing import CheckFailure, Draw, assert_close, check_equal, load_support

pytestmark = pytest.mark.exercise("0.3")
support = load_support("0.3")
mistakes = support.MISCONCEPTIONS


@settings(max_examples=12)
@given(c=support.attention_case())
def test_attention_matches_the_closed_form(impl, c):
    query, keys, mask, W_q, W_k, v = support.attention_inputs(c)
    args = (query, keys, mask, W_q, W_k, v)
    name = support.describe_attention(query, keys, mask)
    support.check_attention(impl.additive_attention(*args), support.attention(*args), args, name)


def test_fixed_model_matches_pasted_logits(impl):
    model = support.make_model(impl, support.FIXED_SIZES, support.fixed_state())
    logits, weights = model(
        support.FIXED_SRC, support.FIXED_MASK, support.FIXED_TGT_IN, return_attention=True
    )
    name = f"{support.describe(support.FIXED_SIZES)} with weights from support.fixed_state()"
    assert_close(
        logits,
        support.fixed_logits(),
        name=f"logits of {name}, forward(FIXED_SRC, FIXED_MASK, FIXED_TGT_IN)",
        hint="s_0 = the encoder state after each row's last real token; c_t from s_{t-1}; "
        "s_t = decoder([tgt_emb(y) ; c_t], s_{t-1}); logits = out([s_t ; c_t])",
        suspects=mistakes.on(support.FIXED_FORWARD),
        **support.FIXED_TOLERANCE,
    )
    assert_close(
        weights,
        support.fixed_weights(),
        name=f"attention weights of {name}, forward(FIXED_SRC, FIXED_MASK, FIXED_TGT_IN)",
        hint="a_t = additive_attention(s_{t-1}, encoder outputs, src_mask, W_q, W_k, v), one row per step",
        **support.FIXED_TOLERANCE,
    )


def test_fixed_model_greedy_decode(impl):
    model = support.make_model(impl, support.FIXED_SIZES, support.fixed_state())
    tokens = model.greedy_decode(
        support.FIXED_SRC, support.FIXED_MASK, support.FIXED_MAX_LEN, support.FIXED_BOS, support.FIXED_EOS
    )
    check_finished_rows(tokens, support.FIXED_EOS, "greedy_decode on the fixed model")
    check_equal(
        torch.as_tensor(tokens).tolist(),
        support.FIXED_TOKENS.tolist(),
        name=f"greedy_decode(FIXED_SRC, FIXED_MASK, max_len={support.FIXED_MAX_LEN}, "
        f"bos={support.FIXED_BOS}, eos={support.FIXED_EOS}) of the fixed model",
        hint="start from bos, feed back the argmax of each step's logits, eos after eos",
    )


def check_finished_rows(tokens, eos: int, name: str) -> None:
    """After a row's first eos, every token is eos."""
    tokens = torch.as_tensor(tokens)
    seen = (tokens == eos).cumsum(dim=1) > 0
    after = torch.cat([torch.zeros_like(seen[:, :1]), seen[:, :-1]], dim=1)
    bad = after & (tokens != eos)
    if bad.any():
        row = int(bad.any(dim=1).nonzero()[0])
        raise mistakes.failure(
            "decodes_past_eos",
            f"{name}: row {row} is {tokens[row].tolist()}, which goes on after eos={eos}",
            hint="keep a `finished` flag per row; a finished row's next tokens are eos",
        )


@settings(max_examples=6)
@given(c=support.model_case(min_len=2))
def test_step_t_attends_before_reading_its_input(impl, c):
    z = c["sizes"]
    model = support.make_model(impl, z, support.random_state(z, c["seed"]))
    src, mask, tgt_in = support.model_inputs(c, full_first_row=True)
    t = int(tgt_in.shape[1]) - 1  # change the last input token only
    changed = tgt_in.clone()
    changed[:, t] = (changed[:, t] + 1) % z.tgt_vocab
    logits, weights = model(src, mask, tgt_in, return_attention=True)
    logits2, weights2 = model(src, mask, changed, return_attention=True)
    name = f"{support.describe(z)}: forward with tgt_in[:, {t}] changed"
    try:
        assert_close(weights2, weights, name=f"attention weights of every step, {name}")
    except CheckFailure as failure:
        raise mistakes.failure(
            "current_state_query",
            f"{failure}\nthe attention of step {t} may only depend on tgt_in[:, :{t}]: it is computed "
            f"from s_{{t-1}}, before the step reads tgt_in[:, {t}]",
        ) from None
    assert_close(
        logits2[:, :t],
        logits[:, :t],
        name=f"logits of the steps before {t}, {name}",
        hint="step t reads tgt_in[:, t] only; earlier steps never see later tokens",
    )


@settings(max_examples=6)
@given(c=support.model_case())
def test_more_padding_changes_nothing(impl, c):
    z = c["sizes"]
    model = support.make_model(impl, z, support.random_state(z, c["seed"]), c["dtype"])
    src, mask, tgt_in = support.model_inputs(c)
    extra = 2
    ids = torch.as_tensor(Draw(c["seed"] + 2).integers(0, z.src_vocab, size=(src.shape[0], extra)))
    padded_src = torch.cat([src, ids], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(src.shape[0], extra, dtype=torch.bool)], dim=1)
    logits, weights = model(src, mask, tgt_in, return_attention=True)
    logits2, weights2 = model(padded_src, padded_mask, tgt_in, return_attention=True)
    name = f"{support.describe(z, c['dtype'])} with {extra} more padded columns"
    assert_close(
        torch.as_tensor(weights2)[..., src.shape[1] :],
        torch.zeros(*weights.shape[:2], extra, dtype=c["dtype"]),
        name=f"attention weights on the added padding, {name}",
        rtol=0,
        atol=0,
        hint="padded positions get exactly 0: -inf scores before the softmax",
    )
    assert_close(
        logits2,
        logits,
        name=f"logits, {name}",
        hint="s_0 is the encoder state after each row's last REAL token, not after the padding; "
        "padded positions are masked in the attention",
    )


@settings(max_examples=5)
@given(c=support.model_case(dtypes=support.st.just(torch.float64)))
def test_greedy_decode_agrees_with_teacher_forcing(impl, c):
    z = c["sizes"]
    model = support.make_model(impl, z, support.random_state(z, c["seed"]))
    src, mask, _ = support.model_inputs(c)
    bos, eos, max_len = 0, 1, 6
    tokens = torch.as_tensor(model.greedy_decode(src, mask, max_len, bos, eos))
    name = (
        f"greedy_decode(src {tuple(src.shape)}, max_len={max_len}, bos={bos}, eos={eos}) "
        f"of {support.describe(z)}"
    )
    if tokens.shape != (src.shape[0], max_len) or tokens.dtype != torch.long:
        raise CheckFailure(
            f"{name}: returned {tuple(tokens.shape)} {tokens.dtype}, "
            f"expected {(src.shape[0], max_len)} torch.int64"
        )
    check_finished_rows(tokens, eos, name)
    tgt_in = torch.cat([torch.full((src.shape[0], 1), bos), tokens[:, :-1]], dim=1)
    argmax = torch.as_tensor(model(src, mask, tgt_in)).argmax(dim=-1)
    finished_before = torch.cat(
        [torch.zeros_like(tokens[:, :1], dtype=torch.bool), (tokens == eos).cumsum(dim=1)[:, :-1] > 0], dim=1
    )
    check_equal(
        torch.where(finished_before, tokens, argmax).tolist(),
        tokens.tolist(),
        name=f"{name} vs the argmax of forward on its own output",
        hint="each step feeds back its argmax token: teacher forcing on that output picks the same tokens",
    )
