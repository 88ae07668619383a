"""Run pytest on exercise tests in a child process and read back the JSON report.

The CLI and the author check use this; a child process gives every run fresh
imports, so roots and mutants never leak into one another.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from llmkit.plugin import TestResult


@dataclass
class PytestRun:
    returncode: int
    results: list[TestResult]
    output: str
    seed: int | None

    @property
    def crashed(self) -> bool:
        """pytest itself failed (usage error, internal error, interrupted)."""
        return self.returncode not in (0, 1, 5)


def run_pytest(
    project_root: Path,
    paths: list[str],
    *,
    impl: str | None = None,
    seed: int | None = None,
    extra_args: list[str] | tuple[str, ...] = (),
    capture: bool = True,
) -> PytestRun:
    with tempfile.TemporaryDirectory(prefix="llmkit-run-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            *paths,
            "--rootdir",
            str(project_root),
            "--import-mode=importlib",
            "-p",
            "no:cacheprovider",
            "--llmkit-report",
            str(report),
        ]
        if impl:
            cmd += ["--impl", impl]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        cmd += list(extra_args)
        proc = subprocess.run(
            cmd,
            cwd=project_root,
            text=True,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.STDOUT if capture else None,
        )
        results, run_seed = [], None
        if report.exists():
            payload = json.loads(report.read_text(encoding="utf-8"))
            results = [TestResult(**t) for t in payload["tests"]]
            run_seed = payload["seed"]
        return PytestRun(proc.returncode, results, proc.stdout or "", run_seed)
