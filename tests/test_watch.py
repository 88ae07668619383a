"""``llmkit watch`` in a pseudo-terminal: the failing screen, a save that passes, the move to
the next exercise, and Ctrl-C."""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from llmkit.catalog import load_catalog
from llmkit.kept_results import results_dir
from llmkit.result import SubmissionResult, TestResult
from llmkit.watch import choose_track, progress_bar, track_exercises

from .conftest import copy_project

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

LLMKIT = "import sys; from llmkit.cli import main; sys.exit(main())"
CLEAR = "\x1b[2J"  # what rich's console.clear() writes first
ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")


def _take_terminal() -> None:
    """In the child: make the pty (already its stdin) the controlling terminal of its new session,
    so Ctrl-C typed there sends SIGINT, as in a real terminal. A shell starts its commands with
    SIGINT at its default and unblocked; the test process may not have it so (a pytest-xdist
    worker under CI), and the command would inherit that and never see the Ctrl-C."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _sigint_state() -> str:
    """How this process treats SIGINT (what a command it starts would inherit), for failures."""
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    return f"SIGINT here: handler {signal.getsignal(signal.SIGINT)!r}, blocked {blocked}"


class Terminal:
    """A command running under a pseudo-terminal; the screens it drew, split at each clear."""

    def __init__(self, argv: list[str], cwd: Path):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("LLMKIT_ROOT", "COLUMNS", "LINES")}
        env["TERM"] = "xterm"
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.raw, self.seen = "", 0  # seen: screens already matched

    def read(self, timeout: float) -> None:
        if select.select([self.master], [], [], timeout)[0]:
            try:
                self.raw += os.read(self.master, 65536).decode("utf-8", "replace")
            except OSError:  # EIO: the child closed the terminal
                time.sleep(timeout)

    def screens(self) -> list[str]:
        return [ESCAPE.sub("", s).replace("\r", "") for s in self.raw.split(CLEAR)]

    def wait_for(self, *needles: str, timeout: float = 60) -> str:
        """The first screen not yet matched that holds every needle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read(0.1)
            for i, screen in enumerate(self.screens()[self.seen :], start=self.seen):
                if all(n in screen for n in needles):
                    self.seen = i
                    return screen
        pytest.fail(f"no screen showed {needles} within {timeout} s; the last one:\n{self.screens()[-1]}")

    def finish(self, timeout: float = 60) -> int:
        """The exit code, once the command has ended; the last screen if it does not within
        ``timeout`` (generous: CI's two loaded cores once took over 20 s)."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read(0.1)
        self.read(0.1)
        if self.proc.poll() is None:
            pytest.fail(
                f"still running {timeout} s later ({_sigint_state()}); the last screen:\n{self.screens()[-1]}"
            )
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        os.close(self.master)


def _keep_a_failure(root: Path, exercise_id: str, test: str, message: str) -> None:
    """Keep a result for the exercise, as `llmkit check` would, newer than its sources."""
    catalog = load_catalog(root)
    failed = TestResult(
        id=f"{catalog.get(exercise_id).public_test}::{test}",
        exercise=exercise_id,
        status="failed",
        points=0,
        max_points=0,
        message=message,
        duration=0.1,
        visibility="visible",
    )
    path = results_dir(catalog, None) / f"{exercise_id}.json"
    SubmissionResult("exercises", "exercises/", 1, "", [], [failed]).write(path)


def test_watch_reruns_on_save_moves_on_and_quits_on_ctrl_c(tmp_path):
    root = copy_project(tmp_path / "kit")
    # 1.2b's fresh result is shown as kept, without a run (a run costs seconds of torch import)
    _keep_a_failure(root, "1.2b", "test_softmax", "softmax: expected 0.25, got 0.5")
    beginner = len(track_exercises(load_catalog(root), "beginner"))
    term = Terminal([sys.executable, "-c", LLMKIT, "watch", "1.2a"], cwd=root)
    try:
        first = term.wait_for("first failing test:", "Watching")
        assert "1.2a Scalar reverse-mode autograd" in first
        assert "exercises/section1/scalar_autograd.py" in first
        assert "status: not started" in first
        assert "first failing test: test_add_and_multiply" in first
        assert "still raises NotImplementedError" in first  # the engine's message, verbatim
        assert "llmkit hint 1.2a" in first
        assert f"{progress_bar(0, beginner)} (beginner track)" in first

        shutil.copy(
            root / "solutions/section1/scalar_autograd.py", root / "exercises/section1/scalar_autograd.py"
        )
        passed = term.wait_for("passes its public tests", "exercises done")
        assert "1.2a Scalar reverse-mode autograd passes its public tests" in passed
        assert "Next: 1.2b Matrix backpropagation in numpy (exercises/section1/numpy_backprop.py)" in passed
        assert progress_bar(1, beginner) in passed

        following = term.wait_for("first failing test:", "Watching exercises/section1/numpy_backprop.py")
        assert "1.2b Matrix backpropagation in numpy" in following
        assert "first failing test: test_softmax\nsoftmax: expected 0.25, got 0.5" in following
        assert "Running the public tests of 1.2b" not in term.raw
        assert "llmkit hint 1.2b" in following

        os.write(term.master, b"\x03")  # Ctrl-C, typed at the terminal
        assert term.finish() == 0
        assert "Stopped watching." in term.screens()[-1]
        assert "Traceback" not in term.raw
    finally:
        term.close()
    kept = SubmissionResult.read(results_dir(load_catalog(root), None) / "1.2a.json")  # for `llmkit status`
    assert [t.status for t in kept.tests] == ["passed"] * len(kept.tests)


def test_progress_bar():
    assert progress_bar(0, 8) == "[--------------------] 0/8 exercises done"
    assert progress_bar(3, 8) == "[########------------] 3/8 exercises done"
    assert progress_bar(5, 5) == "[####################] 5/5 exercises done"


def test_tracks(catalog):
    beginner, advanced = track_exercises(catalog, "beginner"), track_exercises(catalog, "advanced")
    assert {ex.track for ex in beginner} == {"beginner"}
    assert advanced == sorted(catalog.exercises, key=lambda ex: ex.sort_key)
    assert choose_track(catalog, None, None) == "beginner"
    later = next(ex for ex in advanced if ex.track == "advanced")
    assert choose_track(catalog, later.id, None) == "advanced"
    with pytest.raises(ValueError, match="--track advanced"):
        choose_track(catalog, later.id, "beginner")
