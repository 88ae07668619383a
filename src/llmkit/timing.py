"""Same-run speed comparison: candidate against baseline, interleaved, medians and ratio.

Shared machines are noisy, so nothing here is an absolute limit: both sides
run alternately in the same process, several times, and only the ratio of
medians is reported or graded.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SpeedComparison:
    candidate_s: float  # median seconds per call
    baseline_s: float
    repeats: int

    @property
    def ratio(self) -> float:
        """candidate time / baseline time: 1.0 is as fast, 2.0 twice as slow."""
        return self.candidate_s / self.baseline_s

    def __str__(self) -> str:
        return (
            f"median {self.candidate_s * 1e3:.3f} ms vs baseline {self.baseline_s * 1e3:.3f} ms "
            f"= {self.ratio:.2f}x the baseline's time ({self.repeats} interleaved repeats)"
        )


def _time_once(fn: Callable[[], object], number: int, clock: Callable[[], float]) -> float:
    start = clock()
    for _ in range(number):
        fn()
    return (clock() - start) / number


def compare_speed(
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    *,
    repeats: int = 7,
    warmup: int = 1,
    number: int | None = None,
    clock: Callable[[], float] | None = None,
) -> SpeedComparison:
    """Time ``candidate`` and ``baseline`` alternately; return the medians.

    ``number`` calls make one timing; by default it is chosen so a timing of
    the slower side lasts about 20 ms. The order alternates each repeat so
    neither side always runs on a warmer cache.

    In-process both sides use ``clock`` (default: wall time). Under ``--sandbox``
    the candidate's time is the CPU time the OS counted for the worker running
    the learner's code, and the baseline's is this process's CPU time: nothing
    the learner's process reports about itself is used.
    """
    from llmkit.sandbox import active

    candidate_clock = baseline_clock = clock or time.perf_counter
    sandbox = active()
    learner_clock = sandbox.learner_cpu_clock() if sandbox is not None and clock is None else None
    if learner_clock is not None:
        candidate_clock, baseline_clock = learner_clock, time.process_time
    for _ in range(warmup):
        candidate()
        baseline()
    if number is None:
        once = max(_time_once(candidate, 1, candidate_clock), _time_once(baseline, 1, baseline_clock), 1e-7)
        number = max(1, min(1000, int(0.02 / once)))
    cand, base = [], []
    for i in range(repeats):
        pair = [(candidate, cand, candidate_clock), (baseline, base, baseline_clock)]
        for fn, sink, side_clock in pair if i % 2 == 0 else reversed(pair):
            sink.append(_time_once(fn, number, side_clock))
    return SpeedComparison(statistics.median(cand), statistics.median(base), repeats)
