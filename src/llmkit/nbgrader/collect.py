"""A pytest plugin for the course builder: list the hidden grader tests and their points.

``pytest graders/... --collect-only -p llmkit.nbgrader.collect --llmkit-collect-json OUT``
writes one entry per collected test: its exercise, function name, points and whether it
needs a GPU. The builder turns these into the points of the notebooks' test cells.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--llmkit-collect-json", default=None, help="write the collected grader tests as JSON")


def pytest_collection_finish(session: pytest.Session) -> None:
    path = session.config.getoption("--llmkit-collect-json")
    if not path:
        return
    entries = []
    for item in session.items:
        exercise = item.get_closest_marker("exercise")
        points = item.get_closest_marker("points")
        entries.append(
            {
                "exercise": exercise.args[0] if exercise else None,
                "name": getattr(item, "originalname", None) or item.name.split("[", 1)[0],
                "points": float(points.args[0]) if points else 0.0,
                "gpu": item.get_closest_marker("gpu") is not None,
            }
        )
    Path(path).write_text(json.dumps(entries), encoding="utf-8")
