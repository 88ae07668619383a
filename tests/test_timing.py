"""The same-run speed comparison: fresh inputs per timed call, answers checked."""

import pytest
import torch

from llmkit.checks import CheckFailure
from llmkit.timing import Inputs, compare_speed


def test_ratio_of_medians_with_a_fake_clock():
    now = [0.0]
    clock = lambda: now[0]

    def slow(x):
        now[0] += 0.004
        return x

    def fast(x):
        now[0] += 0.001
        return x

    result = compare_speed(slow, fast, lambda i: (i,), repeats=5, number=3, clock=clock)
    assert result.repeats == 5 and result.number == 3
    assert abs(result.candidate_s - 0.004) < 1e-12 and abs(result.baseline_s - 0.001) < 1e-12
    assert abs(result.ratio - 4.0) < 1e-9
    assert "4.00x" in str(result) and "fresh inputs" in str(result)


def test_real_work_ratio_is_ordered():
    make = lambda i: (list(range(i, i + 20_000)),)
    result = compare_speed(lambda data: sorted(data * 8), sorted, make, repeats=5, check=None)
    assert result.ratio > 2.0


def test_every_call_gets_new_inputs_and_both_sides_the_same_values():
    seen = {"cand": [], "base": []}

    def cand(x, *, scale):
        seen["cand"].append(x)
        return x * scale

    def base(x, *, scale):
        seen["base"].append(x)
        return x * scale

    make = lambda i: Inputs((torch.full((3,), float(i)),), {"scale": 2.0})
    compare_speed(cand, base, make, repeats=3, number=2, warmup=1)
    assert len(seen["cand"]) == len(seen["base"]) == 1 + 3 * 2
    ptrs = {x.data_ptr() for x in seen["cand"] + seen["base"]}
    assert len({id(x) for x in seen["cand"]}) == len(seen["cand"]) and len(ptrs) == 2 * len(seen["cand"])
    for c, b in zip(seen["cand"], seen["base"]):
        assert torch.equal(c, b)


def test_an_answer_remembered_from_an_earlier_call_fails():
    remembered = {}

    def cached(x):
        return remembered.setdefault("answer", x * 2)  # the first answer, whatever comes next

    with pytest.raises(CheckFailure, match="differs from the baseline's") as info:
        compare_speed(cached, lambda x: x * 2, lambda i: (torch.randn(4),), repeats=3, number=1)
    assert "identity" in str(info.value)


def test_make_must_return_arguments():
    with pytest.raises(TypeError, match="tuple of arguments"):
        compare_speed(abs, abs, lambda i: i, repeats=1)
