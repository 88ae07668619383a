"""The learner's last public-test results, kept per exercise for `llmkit status` and `watch`.

``.llmkit/results/<impl>/<id>.json`` beside catalog.toml (llmkit.result/1), dated to when
its run began, so that a source file saved since makes it read as stale.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

from llmkit.impl import resolve_root
from llmkit.result import SubmissionResult

STATE_DIR = ".llmkit"  # the learner's state beside catalog.toml: hints shown, last test results


def results_dir(catalog, impl: str | None) -> Path:
    """Where each exercise's last public-test result is kept: one folder per --impl."""
    root = resolve_root(impl, catalog.root)
    key = root.kind
    if root.kind not in ("exercises", "solutions"):  # a directory or a mutant: named by its path
        key += "-" + hashlib.sha256(str(root.mutant or root.path).encode()).hexdigest()[:12]
    return catalog.root / STATE_DIR / "results" / key


def keep_results(catalog, impl: str | None, exercises, run, started: float) -> None:
    """Keep each exercise's share of a pytest run as its last result (llmkit.result/1), dated
    to when the run began: a file saved while it ran is newer, so the result reads as stale."""
    if run.result is None or run.crashed:
        return
    folder = results_dir(catalog, impl)
    for ex in exercises:
        mine = replace(
            run.result,
            exercises=[e for e in run.result.exercises if e.id == ex.id],
            tests=[t for t in run.result.tests if t.exercise == ex.id],
        )
        path = folder / f"{ex.id}.json"
        mine.write(path)
        os.utime(path, (started, started))


def last_results(catalog, impl: str | None, ex):
    """The exercise's last kept tests (None: none kept), when they ran, and a source file
    changed since (the module under test or its public test), if any."""
    path = results_dir(catalog, impl) / f"{ex.id}.json"
    try:
        tests, ran_at = SubmissionResult.read(path).tests, path.stat().st_mtime
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or unreadable: as good as none
        return None, 0.0, None
    sources = [*resolve_root(impl, catalog.root).files_for(ex), catalog.root / ex.public_test]
    changed = next((f for f in sources if f.exists() and f.stat().st_mtime > ran_at), None)
    return tests, ran_at, changed
