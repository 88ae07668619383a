"""llmkit.testing, the one import of public tests and graders: re-exports, and the pieces
graders share (strategies, describe_case, the speed limit)."""

import pytest
import torch
from hypothesis import given

import llmkit.checks
import llmkit.sandbox
import llmkit.support
import llmkit.testing as testing
from llmkit.testing import CheckFailure, assert_speed, assert_speed_ratio, describe_case, multihead_cases


def test_re_exports_are_the_engines_own_objects():
    assert testing.assert_close is llmkit.checks.assert_close
    assert testing.CheckFailure is llmkit.checks.CheckFailure
    assert testing.load_support is llmkit.support.load_support
    assert testing.pipelined is llmkit.sandbox.pipelined
    assert all(hasattr(testing, name) for name in testing.__all__)


def test_describe_case_names_fields_short():
    assert (
        describe_case("LoRALinear", 3, in_features=4, dtype=torch.float32, batch=torch.Size([2, 1]))
        == "LoRALinear(3, in_features=4, dtype=float32, batch=(2, 1))"
    )
    assert describe_case("", "(B, H, N, D)=(1, 2, 3, 4)", torch.float16, sm_scale=None) == (
        "(B, H, N, D)=(1, 2, 3, 4), float16, sm_scale=None"
    )


@given(case=multihead_cases(max_heads=2, max_n=9, head_dims=(16, 32), sm_scales=(0.1, 0.2)))
def test_multihead_cases_stay_in_their_ranges(case):
    (b, h, n, d), causal, sm_scale, seed = case
    assert 1 <= b <= 2 and 1 <= h <= 2 and 1 <= n <= 9 and d in (16, 32)
    assert isinstance(causal, bool) and (sm_scale is None or 0.1 <= sm_scale <= 0.2)
    assert 0 <= seed < 2**31


def test_speed_ratio_is_recorded_and_its_limit_named():
    recorded = {}
    record = recorded.__setitem__
    assert_speed_ratio(0.9, limit=2.0, what="f", hint="h", record_metric=record)
    assert recorded == {"speed_ratio": 0.9}
    with pytest.raises(CheckFailure) as failure:
        assert_speed_ratio(2.5, limit=2.0, what="f at N=3", hint="use a dict", baseline_name="tiktoken")
    assert str(failure.value) == (
        "too slow: f at N=3 took 2.50x tiktoken's time; the limit is 2.0x tiktoken's time\nHint: use a dict"
    )
    with pytest.raises(CheckFailure):
        assert_speed_ratio(float("nan"), limit=2.0, what="f", hint="h")


def test_assert_speed_times_both_sides_and_fails_over_the_limit():
    def slow(x):
        return sum(sorted(x * 20))

    def fast(x):
        return sum(x) * 20

    inputs = lambda i: ([float(j % 7) for j in range(2000 + i)],)  # noqa: E731
    speed = assert_speed(fast, fast, inputs, limit=10.0, what="fast", hint="h", repeats=3)
    assert speed.ratio > 0
    with pytest.raises(CheckFailure, match=r"slow took median .* on fresh inputs\); the limit is 1.0x"):
        assert_speed(slow, fast, inputs, limit=1.0, what="slow", hint="h", repeats=3)
