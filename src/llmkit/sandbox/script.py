"""Learner code in a fresh process of its own, measured by the OS (peak memory).

Linux carries a process's peak RSS across exec, so a child forked from the (large)
grader would report at least the grader's size. A small launcher, started in the
run's jail, becomes the sandbox user, starts the learner's process and reports
that process's exit status and peak RSS from ``os.wait4`` on a pipe of its own:
the learner's process never holds that pipe, cannot signal, trace or read the
launcher (seccomp; the launcher is not dumpable), and in a namespace jail cannot
reset its peak through ``/proc`` (mounted read-only there).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from llmkit.sandbox.launch import jail_command, make_home, resource_limits, worker_environment

_LAUNCHER = r"""
import json, os, subprocess, sys
order = json.loads(sys.argv[1])
report = os.fdopen(order["report_fd"], "w")
out, err = os.dup(1), os.dup(2)  # the grader's pipes, for the learner's process
if order["confine"]:
    from llmkit.sandbox.confine import confine  # no torch here: its RSS would pass to the child
    confine(order)
proc = subprocess.Popen(
    [sys.executable, "-I", "-c", order["child"], *sys.argv[2:]], close_fds=True, stdout=out, stderr=err
)
os.close(out)
os.close(err)
_, status, usage = os.wait4(proc.pid, 0)
scale = 1 if sys.platform == "darwin" else 1024
report.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss * scale}")
report.close()
"""
_CHILD_PRELUDE = """
{imports}
from llmkit.sandbox.audit import install_audit_hook as _install
from llmkit.sandbox.seccomp import install_filter as _filter
_filter()
_install({home!r}, {protected!r}, {allowed!r})
del _install, _filter
"""


@dataclass
class ScriptRun:
    returncode: int  # the learner's process's exit code (negative: killed by that signal)
    stdout: str  # what the learner's process printed
    stderr: str
    peak_rss_bytes: int  # its peak resident memory, from the OS
    timed_out: bool = False
    files: dict[str, bytes] = field(default_factory=dict)  # the ``outputs`` it wrote (regular files)


def run_learner_script(
    script: str,
    args: list[str],
    *,
    module_files: list[str],
    inputs: dict[str, bytes] | None = None,
    preload: tuple[str, ...] = (),
    timeout_s: float = 90.0,
    outputs: tuple[str, ...] = (),
    max_output_bytes: int = 256 * 2**20,
    env: dict[str, str] | None = None,
) -> ScriptRun:
    """Run ``script`` in a fresh Python process and measure it, for checks that need a
    process of its own (peak memory). The script gets the module's files (copies, in
    execution order) as a JSON list in ``sys.argv[1]``, then ``args``; it runs in a
    fresh directory holding ``inputs`` (name -> bytes). Under ``--sandbox`` the process
    runs in the run's jail under the workers' rules (user, limits, seccomp, audit hook);
    ``preload`` names engine modules the script needs, imported before the rules apply.
    The files named in ``outputs`` that the script left in its directory come back in
    :attr:`ScriptRun.files` (regular files only, never through a link, at most
    ``max_output_bytes`` each); their content is the learner's to choose. ``env`` adds
    environment variables (over the workers' scrubbed environment when sandboxed)."""
    from llmkit.sandbox import active

    sandbox = active()
    jail = sandbox.jail if sandbox is not None and sandbox.jail.kind != "trusted" else None
    user = jail.user if jail else None
    home = make_home(sandbox.root if sandbox else None, user)
    try:
        copies = []
        for i, path in enumerate(module_files):
            target = home / f"{i}_{Path(path).name}"
            shutil.copyfile(path, target)
            copies.append(str(target))
        for name, data in (inputs or {}).items():
            (home / Path(name).name).write_bytes(data)
        if user is not None:
            for path in home.iterdir():
                os.chown(path, user.pw_uid, user.pw_gid)
        child = script
        if sandbox is not None:
            prelude = _CHILD_PRELUDE.format(
                imports="\n".join(f"import {name}" for name in preload),
                home=str(home),
                protected=[str(p) for p in sandbox.protected],
                allowed=[str(p) for p in sandbox.allowed],
            )
            child = prelude + script
        read_end, write_end = os.pipe()
        environment = {**(worker_environment(home) if sandbox is not None else os.environ), **(env or {})}
        order = {"report_fd": write_end, "confine": sandbox is not None, "child": child, "home": str(home)}
        if sandbox is not None:
            order.update(
                uid=user.pw_uid if user else None,
                gid=user.pw_gid if user else None,
                limits=resource_limits(sandbox.limits, user is not None),
                env=environment,
            )
        argv = [sys.executable, "-I", "-c", _LAUNCHER, json.dumps(order), json.dumps(copies), *args]
        if jail is not None:
            argv = jail_command(jail, sandbox.root, argv)
        try:
            proc = subprocess.Popen(
                argv,
                cwd=home,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_end,),
                start_new_session=True,
            )
        finally:
            os.close(write_end)
        with os.fdopen(read_end) as report:
            # Only the last OUTPUT_TAIL bytes of each stream are kept: a process that prints
            # gigabytes must not fill the grader's memory.
            tails = [_Tail(proc.stdout), _Tail(proc.stderr)]
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                out, err = (tail.result() for tail in tails)
                return ScriptRun(-signal.SIGKILL, "", err.decode(errors="replace")[-2000:], 0, timed_out=True)
            out, err = (tail.result() for tail in tails)
            line = report.read(200)
        try:
            code, rss = (int(x) for x in line.split())
        except ValueError:
            code, rss = (proc.returncode or 1), 0
        files = {name: data for name in outputs if (data := _read_output(home / name, max_output_bytes))}
        return ScriptRun(
            code, out.decode(errors="replace"), err.decode(errors="replace")[-2000:], rss, files=files
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _read_output(path: Path, limit: int) -> bytes | None:
    """A file the learner's process wrote, or None: not through a symbolic link, only a
    regular file with one name, no more than ``limit`` bytes."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size > limit:
            return None
        return fh.read(limit + 1)[:limit]


OUTPUT_TAIL = 1 << 20  # bytes of a script's stdout (and of its stderr) kept


class _Tail:
    """Reads a pipe to its end in a thread, keeping only the last OUTPUT_TAIL bytes."""

    def __init__(self, pipe) -> None:
        import threading

        self.pipe, self.data = pipe, bytearray()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while chunk := self.pipe.read1(1 << 16):
                self.data += chunk
                if len(self.data) > 2 * OUTPUT_TAIL:
                    del self.data[:-OUTPUT_TAIL]
        except (OSError, ValueError):  # closed by result() after its wait
            pass

    def result(self) -> bytes:
        self.thread.join(timeout=10)  # a grandchild may hold the pipe open: do not wait for it
        self.pipe.close()
        return bytes(self.data[-OUTPUT_TAIL:])
