"""The canonical JSON result of a run (:mod:`llmkit.result`), written by a plugin object
registered only when ``--llmkit-report PATH`` is given (as pytest's junitxml is)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from llmkit.plugin.state import RunState
from llmkit.progress import summarize
from llmkit.result import ExerciseResult, SubmissionResult


def build_result(state: RunState, submission: str) -> SubmissionResult:
    """The canonical result of this run (see :mod:`llmkit.result`). A run over several
    roots (the author check) lists its tests only, each naming its implementation."""
    tests = list(state.results.values())
    exercises, missing = [], set()
    for s in summarize(tests, state.catalog) if state.root is not None else ():
        ex = s.exercise
        skipped = sorted({t.message for t in tests if t.exercise == ex.id and t.status == "skipped"})
        if s.skipped == s.total:
            status, message = "not_graded", "; ".join(skipped)
        elif state.root is not None and not state.root.files_for(ex)[0].exists():
            status, message = "missing", f"the submission has no {ex.module}"
            missing.add(ex.id)
        else:
            status, message = "graded", ""
            if s.ungraded_points:
                message = f"{s.ungraded_points:g} points not graded: {'; '.join(skipped)}"
        exercises.append(ExerciseResult(ex.id, ex.title, s.points, s.max_points, status, message))
    return SubmissionResult(
        submission=submission,
        implementation=", ".join(root.label for root in state.roots),
        seed=state.seed,
        graded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        exercises=exercises,
        tests=[t for t in tests if t.exercise not in missing],  # a missing module: one line, the exercise's
    )


class ReportWriter:
    def __init__(self, path: Path, state: RunState, submission: str) -> None:
        self.path, self.state, self.submission = path, state, submission

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus) -> None:
        if self.state.catalog is not None:
            build_result(self.state, self.submission).write(self.path)
