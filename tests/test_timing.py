"""The same-run speed comparison."""

from llmkit.timing import compare_speed


def test_ratio_of_medians_with_a_fake_clock():
    now = [0.0]
    clock = lambda: now[0]

    def slow():
        now[0] += 0.004

    def fast():
        now[0] += 0.001

    result = compare_speed(slow, fast, repeats=5, number=3, clock=clock)
    assert result.repeats == 5
    assert abs(result.candidate_s - 0.004) < 1e-12 and abs(result.baseline_s - 0.001) < 1e-12
    assert abs(result.ratio - 4.0) < 1e-9
    assert "4.00x" in str(result)


def test_real_work_ratio_is_ordered():
    data = list(range(20_000))
    result = compare_speed(lambda: sorted(data * 8), lambda: sorted(data), repeats=5)
    assert result.ratio > 2.0
