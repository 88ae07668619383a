"""``llmkit watch`` in a pseudo-terminal: the failing screen, a save that passes, the move to
the next exercise, and Ctrl-C."""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from llmkit.result import SubmissionResult

from .conftest import copy_project

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

LLMKIT = "import sys; from llmkit.cli import main; sys.exit(main())"
CLEAR = "\x1b[2J"  # what rich's console.clear() writes first
ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")


def _take_terminal() -> None:
    """In the child: make the pty (already its stdin) the controlling terminal of its new session,
    so Ctrl-C typed there sends SIGINT, as in a real terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


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

    def finish(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read(0.1)
        self.read(0.1)
        return self.proc.wait(timeout=1)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        os.close(self.master)


def test_watch_reruns_on_save_moves_on_and_quits_on_ctrl_c(tmp_path):
    root = copy_project(tmp_path / "kit")
    term = Terminal([sys.executable, "-c", LLMKIT, "watch", "1.2a"], cwd=root)
    try:
        first = term.wait_for("first failing test:", "Watching")
        assert "1.2a Scalar reverse-mode autograd" in first
        assert "exercises/section1/scalar_autograd.py" in first
        assert "status: not started" in first
        assert "first failing test: test_add_and_multiply" in first
        assert "still raises NotImplementedError" in first  # the engine's message, verbatim
        assert "llmkit hint 1.2a" in first
        assert f"[{'-' * 20}] 0/5 exercises done (beginner track)" in first

        shutil.copy(root / "solutions/section1/scalar_autograd.py", root / "exercises/section1/scalar_autograd.py")
        passed = term.wait_for("passes its public tests", "exercises done")
        assert "1.2a Scalar reverse-mode autograd passes its public tests" in passed
        assert "Next: 1.2b Matrix backpropagation in numpy (exercises/section1/numpy_backprop.py)" in passed
        assert f"[{'#' * 4}{'-' * 16}] 1/5 exercises done" in passed

        following = term.wait_for("first failing test:", "Watching exercises/section1/numpy_backprop.py")
        assert "1.2b Matrix backpropagation in numpy" in following
        assert "llmkit hint 1.2b" in following

        os.write(term.master, b"\x03")  # Ctrl-C, typed at the terminal
        assert term.finish() == 0
        assert "Stopped watching." in term.screens()[-1]
        assert "Traceback" not in term.raw
    finally:
        term.close()
    kept = SubmissionResult.read(root / ".llmkit/results/exercises/1.2a.json")  # `llmkit status` reads it
    assert [t.status for t in kept.tests] == ["passed"] * len(kept.tests)
