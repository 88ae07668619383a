"""Run pytest on exercise tests in a child process and read back the JSON report.

The CLI and the author check use this; a child process gives every run fresh
imports, so roots and mutants never leak into one another.
"""

from __future__ import annotations

import os
import signal
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
    timed_out: bool = False

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
    impl: str | list[str] | None = None,
    seed: int | None = None,
    extra_args: list[str] | tuple[str, ...] = (),
    capture: bool = True,
    timeout_s: float | None = None,
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
        for root in [impl] if isinstance(impl, str) else impl or []:
            cmd += ["--impl", root]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        cmd += list(extra_args)
        proc = subprocess.Popen(
            cmd,
            cwd=project_root,
            text=True,
            errors="replace",
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.STDOUT if capture else None,
            start_new_session=True,  # so a timeout can stop everything it started
        )
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            return PytestRun(proc.returncode, None, output or "", timed_out=True)
        except BaseException:  # Ctrl-C in `llmkit check` or `watch`: the run stops with us
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        result = SubmissionResult.read(report) if report.exists() else None
        return PytestRun(proc.returncode, result, output or "")
