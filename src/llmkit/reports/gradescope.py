"""Gradescope autograder ``results.json`` (https://gradescope-autograders.readthedocs.io/en/latest/specs/)."""

from __future__ import annotations

import math
from collections import defaultdict

from llmkit.reports.gradebook import fmt_points, max_score
from llmkit.result import SubmissionResult, TestResult

NOT_STARTED = "the stub still raises NotImplementedError"
NO_GPU = "no GPU"


def label_of(test: TestResult) -> str:
    """Exercise id and a readable test name: ``2.3 sdpa matches torch [causal]``."""
    label = test.name.removeprefix("test_").replace("_", " ")
    last = test.id.rsplit("::", 1)[-1]
    if "[" in last:
        label += " [" + last.split("[", 1)[1]
    return f"{test.exercise} {label}"


def message_of(test: TestResult) -> str:
    """What a learner should read about a test that did not pass (empty for a pass)."""
    msg = (test.message or "").strip()
    if test.status == "passed":
        return msg
    if test.status == "not_started":
        return msg if msg.startswith("not started") else f"not started: {msg or NOT_STARTED}"
    if test.status == "skipped":
        return msg if msg.startswith("not graded") else f"not graded: {msg or NO_GPU}"
    if test.status == "error":
        return f"error: {msg}" if msg else "error: the test could not run"
    return msg or "failed"


def is_speed_metric(name: str) -> bool:
    return name.startswith("speed")


def metric_label(exercise: str, metric: str) -> str:
    """Leaderboard name: ``2.3 speed (x baseline time)`` for ``speed_ratio``."""
    if metric == "speed_ratio":
        return f"{exercise} speed (x baseline time)"
    return f"{exercise} {metric.replace('_', ' ')}"


def speed_metrics(result: SubmissionResult) -> dict[tuple[str, str], float]:
    """``{(exercise, metric): value}`` for speed metrics (lower is better); several tests of one
    exercise that record the same metric are combined by their geometric mean."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for test in result.tests:
        for name, value in (test.metrics or {}).items():
            if (
                is_speed_metric(name)
                and isinstance(value, (int, float))
                and math.isfinite(value)
                and value > 0
            ):
                values[test.exercise, name].append(float(value))
    return {key: math.exp(sum(map(math.log, vs)) / len(vs)) for key, vs in sorted(values.items())}


def _summary(result: SubmissionResult, catalog) -> str:
    if result.error:
        return result.error
    graded = [t for t in result.tests if t.status != "skipped"]
    passed = sum(t.status == "passed" for t in graded)
    parts = [
        f"{fmt_points(result.points)}/{fmt_points(max_score(result, catalog))} points",
        f"{passed}/{len(graded)} tests passed",
    ]
    skipped = len(result.tests) - len(graded)
    if skipped:
        parts.append(f"{skipped} not graded (no GPU)")
    return "; ".join(parts) + f". Replay with seed {result.seed}."


def gradescope_results(result: SubmissionResult, catalog) -> dict:
    """The submission as a Gradescope ``results.json`` document.

    Hidden grader tests are shown after grades are published, public tests at once; a skipped
    (no GPU) test has ``max_score`` 0 so it does not count; an exercise with no module and no
    tests gets one failed entry worth its maximum; speed metrics become leaderboard entries.
    """
    tests = []
    for t in result.tests:
        skipped = t.status == "skipped"
        tests.append(
            {
                "name": label_of(t),
                "number": t.exercise,
                "score": 0.0 if skipped else float(t.points),
                "max_score": 0.0 if skipped else float(t.max_points),
                "status": "passed" if t.status == "passed" else "failed",
                "output": message_of(t),
                "visibility": "after_published" if t.visibility == "hidden" else "visible",
            }
        )
    with_tests = {t.exercise for t in result.tests}
    for e in result.exercises:
        if e.status == "missing" and e.id not in with_tests:
            tests.append(
                {
                    "name": f"{e.id} {e.title}",
                    "number": e.id,
                    "score": 0.0,
                    "max_score": float(e.max_points),
                    "status": "failed",
                    "output": e.message or "missing: the submission has no module for this exercise",
                    "visibility": "visible",
                }
            )
    leaderboard = [
        {"name": metric_label(ex, metric), "value": round(value, 3), "order": "asc"}
        for (ex, metric), value in speed_metrics(result).items()
        if metric == "speed_ratio"
    ]
    doc = {
        "score": float(result.points),
        "execution_time": round(sum(t.duration for t in result.tests)),
        "output": _summary(result, catalog),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {
            "submission": result.submission,
            "seed": result.seed,
            "implementation": result.implementation,
            "graded_at": result.graded_at,
        },
        "tests": tests,
    }
    if leaderboard:
        doc["leaderboard"] = leaderboard
    return doc
