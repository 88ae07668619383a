"""Public tests for exercise 7.1 (tiled attention). Run: pytest exercises/section7

These compare against torch's attention and a float64 logsumexp on a few fixed
shapes and measure memory once. The hidden graders draw random shapes, block
sizes, scales and dtypes, and measure memory at a larger N.
"""

import pytest
import torch

from llmkit.testing import assert_close, format_bytes, load_support, measure_memory

pytestmark = pytest.mark.exercise("7.1")
support = load_support("7.1")


def test_matches_torch_attention(impl, draw):
    q, k, v = (draw.tensor(2, 3, 16, 8, dtype=torch.float64) for _ in range(3))
    out, lse = impl.flash_attention_torch(q, k, v, block_q=4, block_k=8)
    want_out, want_lse = support.attention_and_lse(q, k, v)
    assert_close(out, want_out, name="out", hint="running max m, running sum l, acc; out = acc / l")
    assert_close(lse, want_lse, name="lse", hint="lse = m + log(l), natural log, shape (B, H, N)")


def test_causal_with_a_short_last_tile(impl, draw):
    q, k, v = (draw.tensor(1, 2, 13, 4, dtype=torch.float64) for _ in range(3))
    out, lse = impl.flash_attention_torch(q, k, v, causal=True, block_q=4, block_k=3)
    want_out, want_lse = support.attention_and_lse(q, k, v, causal=True)
    hint = "13 is not a multiple of 4 or 3: the last tile is shorter; mask with global indices"
    assert_close(out, want_out, name="causal out", hint=hint)
    assert_close(lse, want_lse, name="causal lse", hint=hint)


def test_sm_scale_and_float32(impl, draw):
    q, k, v = (draw.tensor(2, 2, 20, 16) for _ in range(3))
    out, lse = impl.flash_attention_torch(q, k, v, sm_scale=0.5, block_q=8, block_k=8)
    want_out, want_lse = support.attention_and_lse(q, k, v, sm_scale=0.5)
    assert_close(out, want_out, name="out with sm_scale=0.5", hint="scores are sm_scale * q @ k^T")
    assert_close(lse, want_lse, name="lse with sm_scale=0.5", hint="lse uses the scaled scores")


def test_does_not_build_the_score_matrix(impl, draw):
    n, d = 512, 32
    q, k, v = (draw.tensor(1, 1, n, d) for _ in range(3))
    used = measure_memory(impl.flash_attention_torch, [q, k, v], kwargs={"block_q": 32, "block_k": 32})
    full = n * n * 4
    assert used.largest_bytes < full // 4, (
        f"your function allocated a {format_bytes(used.largest_bytes)} tensor of shape "
        f"{used.largest_shape} (from {used.largest_op}); the full {n}x{n} score matrix is "
        f"{format_bytes(full)}. Hint: compute scores one (block_q x block_k) tile at a time"
    )
