"""The sandbox of one grading run: its jail, its fork server and one worker per exercise."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from llmkit.sandbox.channel import Worker
from llmkit.sandbox.forkserver import ForkServer
from llmkit.sandbox.launch import (
    Jail,
    JailUnavailable,
    Limits,
    SandboxFailure,
    check_user_jail,
    choose_jail,
    match_worker_allocator,
)
from llmkit.sandbox.remote import RemoteModule
from llmkit.sandbox.seccomp import SeccompUnavailable, check_available


def check_seccomp() -> None:
    try:
        check_available()
    except SeccompUnavailable as exc:
        raise JailUnavailable(
            f"cannot filter the workers' system calls: {exc} (Debian/Ubuntu: apt-get install libseccomp2)"
        ) from None


@dataclass
class Sandbox:
    """Workers for one grading run, one per exercise, restarted after a crash."""

    protected: list[Path]  # the worker may not read these (solutions, graders, other submissions)
    allowed: list[Path]  # ... except these (the interpreter's prefix, the engine package)
    limits: Limits = field(default_factory=Limits.from_env)
    jail: Jail = field(default_factory=choose_jail)
    secret: list[Path] = field(default_factory=list)  # checked unreadable by the "user" jail's user
    root: Path | None = None  # the jail's one writable directory: the workers' homes
    workers: dict[tuple, Worker] = field(default_factory=dict)  # (exercise id, files) -> its worker
    timeouts: dict[tuple, int] = field(default_factory=dict)
    current: Worker | None = None  # the worker of the test running now
    import_errors: dict[tuple, Exception] = field(default_factory=dict)  # a module that cannot load, once
    _fork_server: ForkServer | None = None

    def __post_init__(self) -> None:
        check_user_jail(self.jail, self.allowed, self.secret)
        if self.jail.kind != "trusted":
            check_seccomp()
        match_worker_allocator()
        self.root = Path(tempfile.mkdtemp(prefix="llmkit-jail-"))
        os.chmod(self.root, 0o711)  # the sandbox user reaches its own homes here, lists nothing

    def module(
        self, exercise_id: str, files: list[Path], banned: tuple[str, ...], preload: tuple[str, ...] = ()
    ) -> RemoteModule:
        """The exercise's module in a live worker (started, or restarted after a crash).
        Workers are kept apart by exercise and by files: the author check grades the stub,
        the reference and the mutants in one run. ``preload``: modules the worker imports
        before its rules apply (the catalog entry's)."""
        key = (exercise_id, *map(str, files))
        worker = self.workers.get(key)
        if self.timeouts.get(key, 0) >= self.limits.timeouts_per_exercise:
            raise SandboxFailure(
                f"not run: your code for exercise {exercise_id} already ran past the time limit "
                "earlier in this grading run"
            )
        if key in self.import_errors:
            cached = self.import_errors[key]
            raise type(cached)(str(cached)) from None
        for other in [k for k in self.workers if k != key]:
            self.workers.pop(other).close()  # one torch process at a time: graders run file by file
        if worker is not None and worker.alive and worker.module is not None:
            self.current = worker
            return worker.module
        if worker is not None:
            worker.close()
        worker = Worker(self, exercise_id, files, banned, list(preload))
        self.workers[key] = worker
        self.current = worker
        name = f"llmkit_submission.{Path(files[0]).parent.name}.{Path(files[0]).stem}"
        try:
            module = worker.request(
                "load", worker.copies, exercise_id, list(banned), name, doing="importing your module",
                timeout_s=self.limits.start_timeout_s,
            )  # fmt: skip
        except Exception as exc:
            # The import runs the same code each time: one failure stands for every test.
            self.import_errors[key] = exc
            raise
        if not isinstance(module, RemoteModule):
            worker.kill()
            raise SandboxFailure("the process running your code sent garbage while importing your module")
        worker.module = module
        return module

    def fork_server(self) -> ForkServer:
        if self._fork_server is None or not self._fork_server.alive:
            if self._fork_server is not None:
                self._fork_server.close()
            self._fork_server = ForkServer(self.jail, self.root)
        return self._fork_server

    def end_test(self) -> None:
        for worker in self.workers.values():
            worker.release_holds()
        self.current = None

    def learner_cpu_clock(self):
        """A clock of the current worker's CPU time as the OS counts it, or None."""
        worker = self.current
        if worker is None or worker.cpu_clock is None:
            return None

        def clock() -> float:
            seconds = worker.cpu_seconds()
            if seconds is None:
                raise SandboxFailure("the process running your code stopped during a timing")
            return seconds

        return clock

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()
        if self._fork_server is not None:
            self._fork_server.close()
            self._fork_server = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
