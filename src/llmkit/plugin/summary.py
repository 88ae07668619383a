"""The per-exercise table that ends every run (one per implementation root)."""

from __future__ import annotations

import pytest

from llmkit.plugin.state import STATE
from llmkit.progress import format_summary, summarize


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    state = config.stash[STATE]
    if not state.results or state.catalog is None:
        return
    terminalreporter.section("llmkit summary")
    results = list(state.results.values())
    for root in state.roots:
        mine = [r for r in results if r.implementation == root.label]
        if mine:
            terminalreporter.write_line(f"implementation: {root.label}   seed: {state.seed}")
            for line in format_summary(summarize(mine, state.catalog)):
                terminalreporter.write_line(line)
    if state.root is None:
        return
    for s in summarize(results, state.catalog):
        if s.status == "not started":
            terminalreporter.write_line(
                f"{s.exercise.id}: open exercises/{s.exercise.module} and replace each "
                f"`raise NotImplementedError`; `llmkit hint {s.exercise.id}` gives a hint."
            )
