"""Per-exercise progress from test results: done, in progress, not started.

The pytest plugin prints it after a run; ``llmkit status`` prints it from cached
results without importing pytest or torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmkit.catalog import Catalog, Exercise
from llmkit.result import TestResult

NO_GPU = "not graded: no GPU"


@dataclass
class ExerciseSummary:
    exercise: Exercise
    passed: int = 0
    total: int = 0
    not_started: int = 0
    errors: int = 0
    skipped: int = 0
    points: float = 0.0
    max_points: float = 0.0  # of the tests that ran
    ungraded_points: float = 0.0  # of skipped tests (e.g. no GPU)
    graded: bool = False

    @property
    def status(self) -> str:
        ran = self.total - self.skipped
        if ran == 0:
            return NO_GPU if self.skipped else "no tests"
        if self.passed == ran:
            return "done"
        if self.not_started == ran:
            return "not started"
        if self.errors == ran:
            return "cannot load"
        return "in progress"


def summarize(results: list[TestResult], catalog: Catalog) -> list[ExerciseSummary]:
    by_id: dict[str, ExerciseSummary] = {}
    for r in results:
        s = by_id.setdefault(r.exercise, ExerciseSummary(catalog.get(r.exercise)))
        s.total += 1
        s.passed += r.status == "passed"
        s.not_started += r.status == "not_started"
        s.skipped += r.status == "skipped"
        s.errors += r.status == "error"
        if r.max_points:
            s.graded = True
            if r.status == "skipped":
                s.ungraded_points += r.max_points
            else:
                s.max_points += r.max_points
                s.points += r.points
    return sorted(by_id.values(), key=lambda s: s.exercise.sort_key)


def format_summary(summaries: list[ExerciseSummary]) -> list[str]:
    rows = [("exercise", "title", "status", "tests passed", "points")]
    for s in summaries:
        points = f"{s.points:g}/{s.max_points:g}" if s.graded else "-"
        if s.ungraded_points:
            points += f" ({s.ungraded_points:g} not graded)"
        rows.append((s.exercise.id, s.exercise.title, s.status, f"{s.passed}/{s.total - s.skipped}", points))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
