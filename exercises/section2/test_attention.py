"""Public tests for exercise 2.3 (attention). Run: pytest exercises/section2

These check the basics against torch's own implementations. The hidden
graders check much more (random shapes, dtypes, gradients, edge cases).
"""

import pytest
import torch
import torch.nn.functional as F

from llmkit.testing import assert_close, assert_finite, load_support

pytestmark = pytest.mark.exercise("2.3")
support = load_support("2.3")


def test_softmax_matches_torch(impl, draw):
    x = draw.tensor(4, 7)
    assert_close(impl.softmax(x, dim=-1), torch.softmax(x, dim=-1), name="softmax(x, dim=-1)")
    assert_close(impl.softmax(x, dim=0), torch.softmax(x, dim=0), name="softmax(x, dim=0)")


def test_softmax_is_stable_for_large_inputs(impl):
    x = torch.tensor([[1000.0, 1000.0, -1000.0], [-1000.0, -999.0, -1000.0]])
    out = impl.softmax(x)
    assert_finite(out, name="softmax of large inputs", hint="subtract the row maximum before exp()")
    assert_close(out, torch.softmax(x, dim=-1), name="softmax of large inputs")


def test_attention_matches_torch(impl, draw):
    q, k, v = draw.tensor(2, 5, 8), draw.tensor(2, 6, 8), draw.tensor(2, 6, 3)
    assert_close(
        impl.scaled_dot_product_attention(q, k, v),
        F.scaled_dot_product_attention(q, k, v),
        name="attention output",
        hint="scores are q @ k^T / sqrt(d), softmax over the keys (last axis)",
    )


def test_causal_attention(impl, draw):
    q, k, v = draw.tensor(2, 6, 4), draw.tensor(2, 6, 4), draw.tensor(2, 6, 4)
    assert_close(
        impl.scaled_dot_product_attention(q, k, v, is_causal=True),
        F.scaled_dot_product_attention(q, k, v, is_causal=True),
        name="causal attention output",
        hint="query i may see keys 0..i, the diagonal included",
    )


def test_boolean_mask_true_means_attend(impl, draw):
    q, k, v = draw.tensor(3, 4, 8), draw.tensor(3, 5, 8), draw.tensor(3, 5, 8)
    mask = draw.bool_mask(3, 4, 5)
    mask[..., 0] = True  # every query can see at least one key
    assert_close(
        impl.scaled_dot_product_attention(q, k, v, mask=mask),
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        name="masked attention output",
        hint="True in the mask means 'may attend'; blocked scores become -inf before softmax",
    )


def test_multi_head_attention_matches_torch(impl, draw):
    reference = support.torch_mha(d_model=12, n_heads=3, bias=True, dtype=torch.float32, seed=draw.seed)
    mha = impl.MultiHeadAttention(12, 3)
    mha.load_state_dict(support.state_dict_for_learner(reference))
    x = draw.tensor(2, 5, 12)
    assert_close(
        mha(x),
        support.mha_forward(reference, x, x, x),
        name="MultiHeadAttention(x)",
        hint="split heads as view(B, L, n_heads, head_dim).transpose(1, 2) and scale by sqrt(head_dim)",
    )
