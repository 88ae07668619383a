"""The state of one pytest run, kept on ``config.stash`` for every part of the plugin."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from llmkit.catalog import Catalog, CatalogError, Exercise
from llmkit.impl import ImplementationRoot
from llmkit.result import TestResult


@dataclass
class RunState:
    catalog: Catalog | None
    catalog_error: str | None
    roots: list[ImplementationRoot]  # one per --impl; with several, every test runs on each
    seed: int
    stop_at_first_loss: bool = False
    results: dict[str, TestResult] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)  # labels of mutant roots that lost a point

    @property
    def root(self) -> ImplementationRoot | None:
        """The implementation under test when there is one (the usual run)."""
        return self.roots[0] if len(self.roots) == 1 else None

    def root_of(self, item: pytest.Item) -> ImplementationRoot | None:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "impl_root" in callspec.params:
            return callspec.params["impl_root"]
        return self.roots[0] if self.roots else None


STATE = pytest.StashKey[RunState]()

METRICS = pytest.StashKey[dict]()


def exercise_of(item: pytest.Item) -> Exercise | None:
    """The catalog entry the test's ``exercise`` marker names (None: no marker, or unknown)."""
    return _lookup(item)[0]


def unknown_exercise_message(item: pytest.Item) -> str | None:
    """Why the test's ``exercise`` marker names no catalog entry, if it does not."""
    return _lookup(item)[1]


def _lookup(item: pytest.Item) -> tuple[Exercise | None, str | None]:
    marker = item.get_closest_marker("exercise")
    state = item.config.stash[STATE]
    if marker is None or state.catalog is None:
        return None, None
    try:
        return state.catalog.get(marker.args[0]), None
    except CatalogError as exc:
        return None, str(exc)  # the exercise fixture reports it


def is_grader(item: pytest.Item, state: RunState) -> bool:
    return state.catalog is not None and Path(str(item.path)).resolve().is_relative_to(
        state.catalog.root / "graders"
    )
