"""Run pytest on exercise tests in a child process and read back the JSON report.

The CLI and the author check use this; a child process gives every run fresh
imports, so roots and mutants never leak into one another.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from llmkit.result import SubmissionResult, TestResult


@dataclass
class PytestRun:
    returncode: int
    result: SubmissionResult | None
    output: str

    @property
    def results(self) -> list[TestResult]:
        return self.result.tests if self.result else []

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
        result = SubmissionResult.read(report) if report.exists() else None
        return PytestRun(proc.returncode, result, proc.stdout or "")
