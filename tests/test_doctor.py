"""`llmkit doctor`: one line per item, the fix where something is wrong, exit 1 on a problem."""

import os
import subprocess
import sys

from llmkit.doctor import Finding, run_checks

from .conftest import PROJECT_ROOT


def test_every_item_is_reported_once():
    items = [f.item for f in run_checks()]
    for item in ("python", "torch", "gpu", "triton", "asset gpt2", "grading jail", "nbgrader"):
        assert items.count(item) == 1, items


def test_a_missing_asset_is_a_problem_with_its_fix(tmp_path):
    env = {**os.environ, "LLMKIT_CACHE": str(tmp_path)}
    command = [sys.executable, "-m", "llmkit.cli", "doctor"]
    run = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 1
    line = next(line for line in run.stdout.splitlines() if "asset gpt2" in line)
    assert line.startswith("problem") and "fix: llmkit fetch-assets" in line
    assert "1 problem(s)" in run.stdout and "Traceback" not in run.stdout + run.stderr


def test_a_check_that_crashes_is_reported_not_raised():
    def check_broken():
        raise OSError("disk on fire")

    def check_fine():
        return Finding("fine", "ok", "yes")

    findings = run_checks([check_broken, check_fine])
    assert findings[0] == Finding("broken", "problem", "the check failed: OSError: disk on fire")
    assert findings[1].status == "ok"
