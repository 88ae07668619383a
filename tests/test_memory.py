"""Unit tests for llmkit.memory: peak tensor memory of one call."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import torch

from llmkit.checks import CheckFailure
from llmkit.memory import format_bytes, measure_memory

N, D = 256, 16
F32 = 4


def qkv(n=N, d=D):
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(1, 1, n, d, generator=gen) for _ in range(3)]


def naive_attention(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    return (weights / weights.sum(dim=-1, keepdim=True)) @ v


def tiled_attention(q, k, v, block=32):
    out = torch.empty_like(q)
    for start in range(0, q.shape[-2], block):
        tile = q[:, :, start : start + block] @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (block, N)
        weights = torch.exp(tile - tile.amax(dim=-1, keepdim=True))
        out[:, :, start : start + block] = (weights / weights.sum(dim=-1, keepdim=True)) @ v
    return out


def test_flags_the_n_by_n_matrix_and_names_its_op():
    used = measure_memory(naive_attention, qkv())
    assert used.largest_bytes == N * N * F32
    assert used.largest_shape == (1, N, N) and used.largest_op == "bmm"
    assert used.peak_bytes >= 2 * N * N * F32  # scores and exp(scores - max) coexist
    assert used.end_bytes == N * D * F32  # only the output is left
    torch.testing.assert_close(used.output, naive_attention(*qkv()))


def test_a_tiled_computation_stays_small():
    used = measure_memory(tiled_attention, qkv(), kwargs={"block": 16})
    assert used.largest_bytes == 16 * N * F32  # a (16, N) score tile, the size of the output here
    assert used.peak_bytes < N * N * F32 / 2  # a few tiles and the output
    assert used.total_bytes > N * N * F32  # the tiles add up to more, but never at once
    torch.testing.assert_close(used.output, naive_attention(*qkv()))


def test_inputs_and_their_views_cost_nothing():
    x = torch.randn(100, 10)
    used = measure_memory(torch.Tensor.transpose, [x, 0, 1])
    assert (used.peak_bytes, used.allocations, used.end_bytes) == (0, 0, 0)
    assert torch.equal(used.output, x.t())


def test_tensors_from_before_the_call_cost_nothing():
    table = torch.randn(1000)

    def lookup(x):
        return table[:10] * x

    used = measure_memory(lookup, [torch.randn(10)])
    assert used.allocations == 1 and used.peak_bytes == 10 * F32


def test_freed_temporaries_leave_the_live_total():
    def chain(x):
        y = x * 2  # 400 bytes
        y = y + 1  # the new 400 exist before the old ones are dropped
        y = y - 3
        return y.sum()

    used = measure_memory(chain, [torch.randn(100)])
    assert used.total_bytes == 3 * 400 + F32
    assert used.peak_bytes == 2 * 400
    assert used.end_bytes == F32


def test_views_in_place_ops_and_out_buffers_count_once():
    def views(x):
        y = x * 2
        y.add_(1).mul_(3)
        torch.add(x, 1, out=y)
        return y[:, :2], y.t(), y.view(-1)

    x = torch.randn(10, 10)
    used = measure_memory(views, [x])
    assert used.allocations == 1 and used.peak_bytes == 400 and used.end_bytes == 400


def test_a_resized_buffer_is_counted_at_its_new_size():
    def grow(x):
        buf = x.new_empty(10)
        buf.resize_(1000)
        return buf

    used = measure_memory(grow, [torch.randn(3)])
    assert used.peak_bytes == 1000 * F32 and used.end_bytes == 1000 * F32


def test_tensors_built_from_python_data_are_counted():
    def build(x):
        return torch.tensor([[1.0] * 50] * 20) + x

    used = measure_memory(build, [torch.randn(1)])
    assert used.total_bytes == 2 * 1000 * F32 and used.allocations == 2


def test_numpy_buffers_show_up_in_the_python_peak():
    def with_numpy(x):
        big = np.ones((512, 512))  # 2 MiB, invisible to the dispatch mode
        return x + float(big.sum())

    used = measure_memory(with_numpy, [torch.randn(3)], trace_python=True)
    assert used.peak_bytes == 3 * F32
    assert used.python_peak_bytes >= 512 * 512 * 8
    assert measure_memory(with_numpy, [torch.randn(3)]).python_peak_bytes == -1
    assert not tracemalloc.is_tracing()


def test_settings_are_restored_even_when_the_call_raises():
    threads = torch.get_num_threads()

    def boom(x):
        raise ValueError("learner bug")

    with pytest.raises(ValueError, match="learner bug"):
        measure_memory(boom, [torch.randn(2)], trace_python=True)
    assert torch.get_num_threads() == threads and not tracemalloc.is_tracing()
    assert measure_memory(torch.neg, [torch.randn(2)]).peak_bytes == 2 * F32  # no mode left behind


def test_outputs_come_back_as_plain_tensors_in_their_structure():
    def pair(x):
        return {"a": (x * 2, x.sum()), "n": 3}, [x + 1]

    used = measure_memory(pair, [torch.ones(2)])
    out, [plus] = used.output
    assert type(plus) is torch.Tensor and out["n"] == 3 and torch.equal(out["a"][0], torch.full((2,), 2.0))


def test_tensor_subclass_outputs_are_refused():
    class Sub(torch.Tensor):
        pass

    def sneaky(x):
        return (x * 2).as_subclass(Sub)

    with pytest.raises(CheckFailure, match="subclass Sub"):
        measure_memory(sneaky, [torch.ones(2)])


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(16 * 2**20) == "16.0 MiB"
    assert format_bytes(3 * 2**30) == "3.0 GiB"


# --- peak_memory_of_call: the OS's count, in a fresh process ---------------------------

PEAK_N, PEAK_D = 4096, 32  # one N x N float32 matrix: 64 MiB; a tiled loop adds ~8 MiB

LEARNER_MODULE = """
import math
import numpy as np
import torch

def naive(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    return (weights / weights.sum(dim=-1, keepdim=True)) @ v

def in_numpy(q, k, v):
    s = q.numpy() @ k.numpy().swapaxes(-1, -2) / math.sqrt(q.shape[-1])
    w = np.exp(s - s.max(-1, keepdims=True))
    return torch.from_numpy((w / w.sum(-1, keepdims=True)) @ v.numpy())

def tiled(q, k, v, block=64):
    out = torch.empty_like(q)
    for start in range(0, q.shape[-2], block):
        tile = q[..., start : start + block, :] @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        weights = torch.exp(tile - tile.amax(dim=-1, keepdim=True))
        out[..., start : start + block, :] = (weights / weights.sum(dim=-1, keepdim=True)) @ v
    return out

def broken(q, k, v):
    raise ValueError("learner bug")
"""


def test_peak_memory_of_call_sees_the_n_by_n_matrix_in_torch_and_numpy(tmp_path):
    from llmkit.memory import peak_memory_of_call

    module = tmp_path / "attention.py"
    module.write_text(LEARNER_MODULE)
    q, k, v = qkv(PEAK_N, PEAK_D)
    want = naive_attention(q, k, v)
    square = PEAK_N * PEAK_N * F32
    names = ("naive", "in_numpy", "tiled")
    used = {name: peak_memory_of_call([str(module)], name, [q, k, v]) for name in names}
    for name, got in used.items():
        assert type(got.output) is torch.Tensor, name
        torch.testing.assert_close(got.output, want, rtol=1e-4, atol=1e-5)
        assert got.peak_bytes == got.call_peak_rss - got.control_peak_rss
    assert used["naive"].peak_bytes > 1.5 * square  # the scores and exp(scores - max) coexist
    assert used["in_numpy"].peak_bytes > 1.5 * square  # numpy's float64 arrays: more still
    assert used["tiled"].peak_bytes < square / 2, format_bytes(used["tiled"].peak_bytes)


def test_peak_memory_of_call_reports_a_failing_call(tmp_path):
    from llmkit.memory import peak_memory_of_call

    module = tmp_path / "attention.py"
    module.write_text(LEARNER_MODULE)
    with pytest.raises(CheckFailure, match="ValueError: learner bug"):
        peak_memory_of_call([str(module)], "broken", qkv(8, 4))
