"""The canonical grading result: one JSON document per graded run or submission.

Every report format (CSV gradebook, Gradescope and exercism results.json, HTML
class report and per-learner feedback) renders from :class:`SubmissionResult`;
nothing else is read. Schema (``llmkit.result/1``)::

    {
      "schema": "llmkit.result/1",
      "submission": "alice",                # submission id (directory or zip stem)
      "implementation": "solutions/",       # what was graded, as the engine names it
      "seed": 1234,                         # replay with --seed
      "graded_at": "2026-11-28T18:40:00+00:00",
      "error": null,                        # a submission-level problem (bad zip, ...) or null
      "exercises": [{"id": "2.3", "title": "...", "points": 12.0, "max_points": 20.0,
                     "status": "graded", "message": ""}],
      "tests": [{"id": "graders/section2/test_attention.py::test_x", "exercise": "2.3",
                 "status": "passed", "points": 2.0, "max_points": 2.0, "message": "",
                 "duration": 0.12, "visibility": "hidden", "metrics": {"speed_ratio": 1.03},
                 "implementation": "solutions/"}],
      "points": 12.0, "max_points": 20.0
    }

Test statuses: passed, failed, not_started (the stub still raises
NotImplementedError), error (could not run: import failure, crash, timeout),
skipped (e.g. "not graded: no GPU"). Exercise statuses: graded, missing (the
submission has no module for it), not_graded (every test skipped, e.g. no GPU).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCHEMA = "llmkit.result/1"
TEST_STATUSES = ("passed", "failed", "not_started", "error", "skipped")
EXERCISE_STATUSES = ("graded", "missing", "not_graded")


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class

    id: str
    exercise: str
    status: str
    points: float
    max_points: float
    message: str
    duration: float
    visibility: str  # visible (public test) | hidden (grader)
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. speed_ratio (lower is better)
    implementation: str = ""  # the root tested, as the engine names it (runs over several roots)

    @property
    def name(self) -> str:
        """The test function's name, without file or parameters."""
        return self.id.rsplit("::", 1)[-1].split("[", 1)[0]


@dataclass
class ExerciseResult:
    id: str
    title: str
    points: float
    max_points: float
    status: str
    message: str = ""


@dataclass
class SubmissionResult:
    submission: str
    implementation: str
    seed: int
    graded_at: str
    exercises: list[ExerciseResult]
    tests: list[TestResult]
    error: str | None = None
    schema: str = SCHEMA

    @property
    def points(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def max_points(self) -> float:
        return sum(e.max_points for e in self.exercises)

    def to_json(self) -> dict:
        data = asdict(self)
        data["points"], data["max_points"] = self.points, self.max_points
        return data

    @classmethod
    def from_json(cls, data: dict) -> SubmissionResult:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not an llmkit result (schema {data.get('schema')!r}, expected {SCHEMA!r})")
        return cls(
            submission=data["submission"],
            implementation=data["implementation"],
            seed=data["seed"],
            graded_at=data["graded_at"],
            exercises=[ExerciseResult(**e) for e in data["exercises"]],
            tests=[TestResult(**t) for t in data["tests"]],
            error=data.get("error"),
        )

    def to_bytes(self) -> bytes:
        """The canonical serialisation: exactly the bytes :meth:`write` puts in the file (UTF-8 JSON,
        two-space indent, ASCII only, fields in schema order, a final newline). The grader's MAC
        (:mod:`llmkit.grading`) is computed over these bytes."""
        return (json.dumps(self.to_json(), indent=2) + "\n").encode("utf-8")

    def write(self, path: Path) -> None:
        write_bytes_atomically(path, self.to_bytes())

    @classmethod
    def read(cls, path: Path) -> SubmissionResult:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def write_json_atomically(path: Path, payload: dict) -> None:
    """Write to a temporary file in the same directory, then rename over ``path``."""
    write_bytes_atomically(path, json.dumps(payload, indent=2).encode("utf-8"))


def write_text_atomically(path: Path, text: str) -> None:
    """:func:`write_bytes_atomically` of ``text`` in UTF-8, line endings untouched."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file (mode 0600) beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
