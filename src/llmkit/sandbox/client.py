"""The grader's side of the sandbox: worker processes and remote handles.

:class:`Sandbox` keeps one worker per exercise. A worker is started with
``python -I``, in a fresh directory holding copies of the module's files, with
a scrubbed environment, its own session and process group, resource limits
(address space, CPU time, file size, open files, processes), as an
unprivileged user when the grader is root and the interpreter is readable by
one, and a wall-clock limit on every request.

:class:`RemoteObject` is what graders hold: attribute access, calls, operators,
iteration and ``len`` go to the worker; plain data (tensors, arrays, numbers,
strings, containers) comes back decoded by :mod:`llmkit.sandbox.wire`, anything
else stays in the worker as another handle. Learner exceptions come back as the
same built-in exception type (``pytest.raises(ValueError)`` works) carrying the
worker's traceback lines; a crash, timeout or garbage answer fails the test
with a :class:`SandboxFailure`.
"""

from __future__ import annotations

import builtins
import ctypes
import json
import os
import pwd
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from llmkit.checks import CheckFailure
from llmkit.sandbox import wire
from llmkit.sandbox.audit import apply_limits

MALLOC_MMAP_THRESHOLD = 32 * 2**20
MALLOC_TRIM_THRESHOLD = 256 * 2**20
CACHE_MIN_BYTES = 1 << 16  # inputs at least this large are sent once and kept by the worker


class SandboxFailure(CheckFailure):
    """The worker crashed, hung, broke a limit or answered garbage: the test fails."""


@dataclass(frozen=True)
class Limits:
    call_timeout_s: float = 60.0  # wall clock, per request (the references need a few seconds at most)
    start_timeout_s: float = 120.0  # interpreter start and module import
    memory_bytes: int = 4 * 2**30  # address space
    cpu_seconds: int = 1800  # CPU time over the worker's life
    file_bytes: int = 64 * 2**20  # largest file the worker may write
    open_files: int = 256
    processes: int = 512  # per user; applies when the worker runs as an unprivileged user
    timeouts_per_exercise: int = 1  # after this many, the exercise's remaining tests fail at once

    @classmethod
    def from_env(cls) -> Limits:
        """Overrides from ``LLMKIT_SANDBOX_TIMEOUT`` (s) and ``LLMKIT_SANDBOX_MEMORY_MB``."""
        kw = {}
        if os.environ.get("LLMKIT_SANDBOX_TIMEOUT"):
            kw["call_timeout_s"] = float(os.environ["LLMKIT_SANDBOX_TIMEOUT"])
        if os.environ.get("LLMKIT_SANDBOX_MEMORY_MB"):
            kw["memory_bytes"] = int(os.environ["LLMKIT_SANDBOX_MEMORY_MB"]) * 2**20
        return cls(**kw)


# --- launching ------------------------------------------------------------------


def _world_usable(path: Path, need: int) -> bool:
    """Whether any user may reach ``path`` (o+x on every parent) and use it (``need`` bits for others)."""
    path = path.resolve()
    try:
        if not path.stat().st_mode & need:
            return False
        return all(p.stat().st_mode & stat.S_IXOTH for p in path.parents)
    except OSError:
        return False


def unprivileged_user() -> pwd.struct_passwd | None:
    """``nobody`` when the grader is root and ``nobody`` can run this interpreter and
    read its packages; otherwise None (the worker runs as the grader's user)."""
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam("nobody")
    except KeyError:
        return None
    roots = [Path(sys.executable), Path(torch.__file__).parent, Path(wire.__file__).parent]
    need = stat.S_IROTH | stat.S_IXOTH
    if all(_world_usable(p, need) for p in roots):
        return user
    return None


def worker_environment(home: Path) -> dict[str, str]:
    """A scrubbed environment: nothing from the grader's but what a Python process needs."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "TRITON_CACHE_DIR": str(home / "triton-cache"),
        "PYTHONDONTWRITEBYTECODE": "1",
        # Keep freed memory for reuse, as a long-running process's allocator ends up
        # doing: a fresh process otherwise pays page faults on every large tensor, which
        # doubled exercise-sized call times and would distort the speed ratios.
        "MALLOC_MMAP_THRESHOLD_": str(MALLOC_MMAP_THRESHOLD),
        "MALLOC_TRIM_THRESHOLD_": str(MALLOC_TRIM_THRESHOLD),
    }
    if os.environ.get("TRITON_INTERPRET"):
        env["TRITON_INTERPRET"] = os.environ["TRITON_INTERPRET"]
    return env


def make_home(user: pwd.struct_passwd | None) -> Path:
    home = Path(tempfile.mkdtemp(prefix="llmkit-sandbox-"))
    (home / "tmp").mkdir()
    (home / "triton-cache").mkdir()
    if user is not None:
        for path in (home, home / "tmp", home / "triton-cache"):
            os.chown(path, user.pw_uid, user.pw_gid)
    return home


def resource_limits(limits: Limits, unprivileged: bool) -> dict[str, int]:
    """``limits`` as resource-module names and values (RLIMIT_NPROC counts per user, so it
    applies only to a worker running as its own unprivileged user)."""
    caps = {
        "RLIMIT_AS": limits.memory_bytes,
        "RLIMIT_CPU": limits.cpu_seconds,
        "RLIMIT_FSIZE": limits.file_bytes,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_CORE": 0,
    }
    if unprivileged:
        caps["RLIMIT_NPROC"] = limits.processes
    return caps


def limit_resources(limits: Limits, unprivileged: bool):
    """A preexec function applying ``limits`` in a child before it executes Python."""

    caps = resource_limits(limits, unprivileged)
    return lambda: apply_limits(caps)


def sandboxed_popen(
    args: list[str],
    home: Path,
    limits: Limits,
    user: pwd.struct_passwd | None,
    *,
    pass_fds: tuple[int, ...] = (),
    stdout=subprocess.DEVNULL,
    stderr=None,
) -> subprocess.Popen:
    """Start ``python -I args...`` under the sandbox's rules (also used by graders that
    must run learner code in a fresh process, e.g. to measure its peak memory)."""
    if stderr is None:
        stderr = open(home / "stderr.txt", "wb")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-I", *args],
        cwd=home,
        env=worker_environment(home),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        pass_fds=pass_fds,
        start_new_session=True,
        preexec_fn=limit_resources(limits, user is not None),
        user=user.pw_uid if user else None,
        group=user.pw_gid if user else None,
        extra_groups=[] if user else None,
        close_fds=True,
    )


_libc = None


def match_worker_allocator() -> None:
    """Give this (grader) process the workers' allocator settings, so baselines timed
    here and learner code timed there allocate alike (glibc only; a no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, MALLOC_MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, MALLOC_TRIM_THRESHOLD)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def process_cpu_clock(pid: int) -> int | None:
    """The clock id of another process's CPU time (the OS's accounting), or None."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        clock = ctypes.c_int()
        if _libc.clock_getcpuclockid(pid, ctypes.byref(clock)) != 0:
            return None
        return clock.value
    except (OSError, AttributeError):
        return None


# --- the fork server ------------------------------------------------------------------------


class ForkServer:
    """A process that has imported torch and the engine once and forks a fresh worker
    for each exercise (a worker then starts in milliseconds, not a second of imports).
    It runs with the workers' scrubbed environment; each child takes on the limits,
    user, session and directory of its order before any learner code runs."""

    def __init__(self) -> None:
        self.home = make_home(None)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "llmkit.sandbox.worker", str(theirs.fileno())],
            cwd=self.home,
            env=worker_environment(self.home),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.home / "stderr.txt", "wb"),  # noqa: SIM115 - the child owns it
            pass_fds=(theirs.fileno(),),
            start_new_session=True,
        )
        theirs.close()
        self.control = ours

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _ask(self, order: dict, timeout_s: float = 120.0) -> tuple[dict, list[int]]:
        self.control.settimeout(timeout_s)
        try:
            self.control.send(json.dumps(order).encode())
            packet, fds, _, _ = socket.recv_fds(self.control, 1 << 16, 1)
        except OSError as exc:
            raise SandboxFailure(f"the sandbox's fork server stopped ({exc})") from None
        if not packet:
            raise SandboxFailure("the sandbox's fork server stopped")
        return json.loads(packet), fds

    def fork(self, order: dict) -> tuple[int, int]:
        """A new worker: its pid and the grader's end of its channel."""
        reply, fds = self._ask(order)
        if len(fds) != 1:
            raise SandboxFailure("the sandbox's fork server did not hand over a channel")
        return int(reply["pid"]), fds[0]

    def wait(self, pid: int) -> int | None:
        """The exit code of a worker that has been killed or has exited."""
        try:
            return self._ask({"op": "status", "pid": pid}, timeout_s=30)[0]["returncode"]
        except (SandboxFailure, KeyError, ValueError):
            return None

    def close(self) -> None:
        self.control.close()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


# --- one worker --------------------------------------------------------------------


def _describe_exit(returncode: int | None, limits: Limits) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode >= 0:
        return f"exited with code {returncode} (sys.exit/os._exit in your code?)"
    sig = -returncode
    name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
    why = {
        "SIGKILL": f"killed (memory use beyond {limits.memory_bytes // 2**20} MiB, or another hard limit)",
        "SIGXCPU": f"stopped for using more than {limits.cpu_seconds} s of CPU time",
        "SIGXFSZ": f"stopped for writing a file larger than {limits.file_bytes // 2**20} MiB",
        "SIGSEGV": "crashed (segmentation fault)",
    }.get(name, f"ended by signal {name}")
    return why


class Worker:
    """One sandboxed process holding one exercise's module."""

    def __init__(
        self,
        sandbox: Sandbox,
        exercise_id: str,
        files: list[Path],
        banned: tuple[str, ...],
        preload: list[str],
    ):
        self.sandbox = sandbox
        self.exercise_id = exercise_id
        self.limits = sandbox.limits
        self.home = make_home(sandbox.user)
        self.alive = False
        self.channel = -1
        self.fatal: SandboxFailure | None = None
        self.pending_release: list[int] = []
        self.held: dict[int, tuple[torch.Tensor, int, int | None]] = {}  # id -> (tensor, version, hold id)
        self.next_hold = -1
        self.module: RemoteModule | None = None
        copies = []
        for i, path in enumerate(files):
            target = self.home / "module" / f"{i}_{Path(path).name}"
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(path, target)
            copies.append(str(target))
        if sandbox.user is not None:
            for path in [self.home / "module", *copies]:
                os.chown(path, sandbox.user.pw_uid, sandbox.user.pw_gid)
        self.copies = copies
        self.original_files = {c: str(f) for c, f in zip(copies, files)}
        order = {
            "op": "fork",
            "home": str(self.home),
            "env": worker_environment(self.home),
            "limits": resource_limits(self.limits, sandbox.user is not None),
            "uid": sandbox.user.pw_uid if sandbox.user else None,
            "gid": sandbox.user.pw_gid if sandbox.user else None,
            "protected": [str(p) for p in sandbox.protected],
            "allowed": [str(p) for p in sandbox.allowed],
            "preload": preload,
        }
        self.returncode: int | None = None
        self.pid, self.channel = sandbox.fork_server().fork(order)
        self.request_fd = self.response_fd = self.channel
        self.alive = True
        self.cpu_clock = process_cpu_clock(self.pid)
        self._read_reply(self.limits.start_timeout_s, "starting")

    # --- transport --------------------------------------------------------------

    def stderr_tail(self, n: int = 1500) -> str:
        try:
            data = (self.home / "stderr.txt").read_bytes()[-n:]
        except OSError:
            return ""
        return data.decode("utf-8", errors="replace").strip()

    def kill(self) -> None:
        """Stop the worker (its whole process group) and collect its exit code."""
        if self.alive:
            self.alive = False
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.returncode = self.sandbox.fork_server().wait(self.pid)
        if self.channel >= 0:
            os.close(self.channel)
        self.channel = self.request_fd = self.response_fd = -1

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.home, ignore_errors=True)

    def _fatal(self, message: str, hint: str | None = None) -> SandboxFailure:
        """Stop the worker; the failure is kept, and every later call on this worker
        raises it again (so hypothesis, replaying an example, sees the same failure)."""
        self.kill()
        if self.fatal is None:
            self.fatal = SandboxFailure(message, hint=hint)
        return self.fatal

    def _died(self, doing: str) -> SandboxFailure:
        self.kill()
        how = _describe_exit(self.returncode, self.limits)
        tail = self.stderr_tail()
        output = f"; its last output:\n{tail}" if tail else ""
        return self._fatal(f"the process running your code {how} while {doing}{output}")

    def _read_reply(self, timeout_s: float, doing: str):
        deadline = time.monotonic() + timeout_s

        def reader(fd: int, n: int) -> bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
            return os.read(fd, n)

        try:
            doc, buffers = wire.read_message(self.response_fd, reader)
        except TimeoutError:
            self.sandbox.timeouts[self.exercise_id] = self.sandbox.timeouts.get(self.exercise_id, 0) + 1
            _fail(
                self._fatal(
                    f"your code ran for more than {timeout_s:g} s (wall clock) while {doing}; it was stopped",
                    hint="look for an infinite loop, or a much slower algorithm than the one asked for",
                )
            )
        except (EOFError, OSError):
            _fail(self._died(doing))
        except wire.WireError as exc:
            _fail(self._garbage(doing, exc))
        if type(doc) is not dict:
            _fail(self._garbage(doing, wire.WireError("not a message")))
        return doc, buffers

    def request(self, op: str, *args, doing: str | None = None, timeout_s: float | None = None):
        doing = doing or op
        if not self.alive:
            _fail(self.fatal or SandboxFailure(f"the process running your code had stopped before {doing}"))
        holds: list[tuple[int, torch.Tensor]] = []
        encoder = wire.Encoder(_grader_ref, allow_pickle=True, cached=lambda t: self._hold_id(t, holds))
        doc = {"op": op, "args": encoder.encode(tuple(args))}
        if holds:
            hold_encoder = wire.Encoder(_grader_ref)
            hold_encoder.buffers = encoder.buffers  # one message, one buffer list
            doc["hold"] = [[rid, hold_encoder.encode(t)] for rid, t in holds]
        if self.pending_release:
            doc["release"], self.pending_release = self.pending_release, []
        try:
            wire.write_message(self.request_fd, doc, encoder.buffers)
        except OSError:
            _fail(self._died(doing))
        reply, buffers = self._read_reply(timeout_s or self.limits.call_timeout_s, doing)
        if "error" in reply:
            try:
                exc = _learner_exception(reply["error"], self.original_files)
            except (wire.WireError, TypeError, ValueError, AttributeError) as bad:
                _fail(self._garbage(doing, bad))
            raise exc
        try:
            decoder = wire.Decoder(buffers, self._proxy)
            value = decoder.decode(reply.get("value"))
            mutated = decoder.decode(reply.get("mutated", {"list": []}))
            mutated_holds = decoder.decode(reply.get("mutated_holds", {"list": []}))
            calls = reply.get("banned_calls", [])
            if not (isinstance(calls, list) and all(isinstance(c, str) for c in calls)):
                raise wire.WireError("bad banned_calls")
        except (wire.WireError, TypeError, ValueError, KeyError, AttributeError, IndexError) as bad:
            _fail(self._garbage(doing, bad))
        self._copy_back(mutated, mutated_holds, encoder.storage_owners)
        if calls:
            from llmkit.bans import BannedCallError

            names = ", ".join(calls)[:500]
            raise BannedCallError(f"exercise {self.exercise_id} bans calls your code made: {names}")
        return value

    def _garbage(self, doing: str, exc: BaseException) -> SandboxFailure:
        return self._fatal(f"the process running your code sent garbage while {doing} ({exc})")

    def _hold_id(self, t: torch.Tensor, holds: list) -> int | None:
        """An id for a large input tensor the worker keeps between calls, so repeated calls
        (speed tests) do not resend it. A tensor is held from its second unchanged send on:
        the first send travels in full, so the worker can see any in-place write to it
        byte for byte (a held tensor's writes are seen only through its version counter)."""
        if t.requires_grad or t.numel() * t.element_size() < CACHE_MIN_BYTES or t.device.type != "cpu":
            return None
        entry = self.held.get(id(t))
        if entry is not None and entry[0] is t and entry[1] == t._version:
            if entry[2] is not None:
                return entry[2]
            rid = self.next_hold
            self.next_hold -= 1
            self.held[id(t)] = (t, t._version, rid)
            holds.append((rid, t))
            return rid
        if entry is not None and entry[2] is not None:
            self.pending_release.append(entry[2])
        self.held[id(t)] = (t, t._version, None)  # seen once
        return None

    def release_holds(self) -> None:
        """Forget the inputs kept for this test (called between tests)."""
        self.pending_release.extend(rid for _, _, rid in self.held.values() if rid is not None)
        self.held.clear()

    def _copy_back(self, mutated, mutated_holds, owners: dict[int, tuple[torch.Tensor, bool]]) -> None:
        """Apply the learner's in-place writes to the grader's tensors, as one process would
        have, when the argument was an output buffer (every element poisoned, see
        :func:`llmkit.checks.poison`; e.g. ``out=``). Any other input changed in place
        fails the call: inputs are read-only, and a grader must not see them altered."""
        from llmkit.checks import is_poisoned

        held = {rid: t for t, _, rid in self.held.values() if rid is not None}
        pairs = []
        for item in mutated if isinstance(mutated, list) else []:
            if isinstance(item, list) and len(item) == 2 and item[0] in owners:
                original, compact = owners[item[0]]
                pairs.append((original, item[1], compact))
        for item in mutated_holds if isinstance(mutated_holds, list) else []:
            if isinstance(item, list) and len(item) == 2 and item[0] in held:
                pairs.append((held[item[0]], item[1], True))
        for original, _, _ in pairs:
            if not is_poisoned(original):
                raise CheckFailure(
                    f"your code changed one of its inputs in place (a {original.dtype} tensor of shape "
                    f"{tuple(original.shape)})",
                    hint="treat inputs as read-only: compute results into new tensors "
                    "(or into out= when the function takes one)",
                )
        with torch.no_grad():
            for original, new, compact in pairs:
                if not isinstance(new, torch.Tensor):
                    continue
                if compact:  # a copy of the view travelled: copy the view's values back
                    if new.shape == original.shape and new.dtype == original.dtype:
                        original.copy_(new.to(original.device))
                    continue
                base = torch.empty(0, dtype=torch.uint8, device=original.device)
                base.set_(original.untyped_storage())
                if new.dtype == torch.uint8 and new.numel() == base.numel():
                    base.copy_(new.to(base.device))

    def _proxy(self, doc: dict) -> RemoteObject:
        if type(doc.get("ref")) is not int:
            raise wire.WireError("bad reference")
        type_name = str(doc.get("type", "object"))[:80]
        return RemoteObject._make(self, doc["ref"], type_name, bool(doc.get("callable")))

    def cpu_seconds(self) -> float | None:
        if self.cpu_clock is None or not self.alive:
            return None
        try:
            return time.clock_gettime(self.cpu_clock)
        except OSError:
            return None


def _fail(exc: SandboxFailure):
    """Raise a worker failure from this one line, with a fresh traceback: replays of a
    failing example then fail at the same place with the same message."""
    raise exc.with_traceback(None) from None


def _grader_ref(value) -> dict:
    if isinstance(value, RemoteObject):
        return {"ref": object.__getattribute__(value, "_llmkit_id")}
    raise TypeError(f"{type(value).__name__} is not plain data")


_ENGINE_EXCEPTIONS = {"ImplementationError", "BannedCallError", "CheckFailure"}


def _learner_exception(error: dict, original_files: dict[str, str]) -> BaseException:
    """Rebuild the learner's exception on the grader's side as a plain, safe object."""
    if type(error) is not dict:
        raise wire.WireError("bad error")
    name = str(error.get("type", "Exception"))[:100]
    message = str(error.get("message", ""))[:4000]
    tb = str(error.get("traceback", ""))[:4000]
    for copy, original in original_files.items():
        tb = tb.replace(copy, original)
        message = message.replace(copy, original)
    if name == "ImplementationError":
        from llmkit.impl import ImplementationError

        exc: BaseException = ImplementationError(message)
    elif name in _ENGINE_EXCEPTIONS:
        exc = CheckFailure(message)
    else:
        cls = getattr(builtins, name, None)
        if not (isinstance(cls, type) and issubclass(cls, Exception)) or name in ("SystemExit",):
            cls = RemoteError
            message = f"{name}: {message}"
        try:
            exc = cls(message)
        except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs five arguments
            exc = RemoteError(f"{name}: {message}")
    exc.llmkit_remote = {
        "in_learner_code": bool(error.get("in_learner_code")),
        "where": error.get("where"),
        "type": name,
    }
    if tb:
        exc.add_note("in your code (sandboxed):\n" + tb.rstrip())
    return exc


class RemoteError(Exception):
    """An exception of a type that exists only in the learner's code."""


# --- handles --------------------------------------------------------------------------

_BINARY = [
    "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
    "and", "or", "xor", "lshift", "rshift",
]  # fmt: skip
_UNARY = ["neg", "pos", "abs", "invert"]
_COMPARE = ["lt", "le", "gt", "ge"]


class RemoteObject:
    """A learner object that lives in a sandbox worker."""

    __slots__ = ("_llmkit_worker", "_llmkit_id", "_llmkit_type", "_llmkit_callable", "__weakref__")

    @classmethod
    def _make(cls, worker: Worker, rid: int, type_name: str, is_callable: bool) -> RemoteObject:
        obj = object.__new__(RemoteModule if type_name == "module" else cls)
        for name, value in (
            ("_llmkit_worker", worker),
            ("_llmkit_id", rid),
            ("_llmkit_type", type_name),
            ("_llmkit_callable", is_callable),
        ):
            object.__setattr__(obj, name, value)
        return obj

    def _llmkit_request(self, op: str, *args, doing: str | None = None):
        return self._llmkit_worker.request(op, *args, doing=doing)

    def __del__(self):
        try:
            worker = self._llmkit_worker
            if worker.alive:
                worker.pending_release.append(self._llmkit_id)
        except AttributeError:
            pass

    def __getattr__(self, name: str):
        if name.startswith("_llmkit") or name in ("__array__", "__torch_function__", "__array_interface__"):
            raise AttributeError(name)
        return self._llmkit_request("getattr", self, name, doing=f"reading .{name} of {self._llmkit_type}")

    def __setattr__(self, name: str, value) -> None:
        self._llmkit_request("setattr", self, name, value, doing=f"setting .{name} of {self._llmkit_type}")

    def __delattr__(self, name: str) -> None:
        self._llmkit_request("delattr", self, name)

    def __call__(self, *args, **kwargs):
        return self._llmkit_request("call", self, list(args), kwargs, doing=f"calling {self._llmkit_type}")

    def __repr__(self) -> str:
        try:
            text = self._llmkit_request("builtin", "repr", self)
        except Exception:  # noqa: BLE001 - a repr must not fail
            text = None
        return text if isinstance(text, str) else f"<{self._llmkit_type} in the sandbox>"

    def __str__(self) -> str:
        text = self._llmkit_request("builtin", "str", self)
        return text if isinstance(text, str) else repr(self)

    def _llmkit_builtin(self, name: str, kind: type):
        """``name(self)`` run in the worker; the answer must be exactly of type ``kind``."""
        value = self._llmkit_request("builtin", name, self)
        if type(value) is not kind:
            raise TypeError(
                f"{name}() of {self._llmkit_type} gave a {type(value).__name__}, not {kind.__name__}"
            )
        return value

    def __len__(self) -> int:
        return self._llmkit_builtin("len", int)

    def __bool__(self) -> bool:
        return self._llmkit_builtin("bool", bool)

    def __float__(self) -> float:
        return self._llmkit_builtin("float", float)

    def __int__(self) -> int:
        return self._llmkit_builtin("int", int)

    def __getitem__(self, key):
        return self._llmkit_request("builtin", "getitem", self, key)

    def __setitem__(self, key, value) -> None:
        self._llmkit_request("builtin", "setitem", self, key, value)

    def __contains__(self, item) -> bool:
        return bool(self._llmkit_request("builtin", "contains", self, item) is True)

    def __iter__(self):
        it = self._llmkit_request("builtin", "iter", self, doing=f"iterating over {self._llmkit_type}")
        if not isinstance(it, RemoteObject):
            raise TypeError("iter() did not give an iterator")
        return RemoteIterator(it)

    def __eq__(self, other) -> bool:  # identity only: a learner's __eq__ never decides
        return self is other

    def __hash__(self) -> int:
        return object.__hash__(self)

    def __reduce__(self):
        raise TypeError("a sandboxed object cannot be pickled or copied; read its data instead")


class RemoteIterator:
    """Iterates a worker-side iterator, fetching items in batches."""

    def __init__(self, remote: RemoteObject, batch: int = 256):
        self.remote, self.batch, self.items, self.done = remote, batch, [], False

    def __iter__(self):
        return self

    def __next__(self):
        if not self.items:
            if self.done:
                raise StopIteration
            got = self.remote._llmkit_request("next_batch", self.remote, self.batch, doing="iterating")
            if not (isinstance(got, list) and len(got) == 2 and isinstance(got[0], list)):
                raise SandboxFailure("the process running your code sent garbage while iterating")
            self.items, self.done = list(reversed(got[0])), got[1] is True
            if not self.items:
                raise StopIteration
        return self.items.pop()


def _special(name: str, arity: int):
    dunder = f"__{name}__"

    if arity == 1:

        def method(self):
            return self._llmkit_request("special", self, dunder, [], doing=f"{dunder} of {self._llmkit_type}")

    else:

        def method(self, other):
            return self._llmkit_request(
                "special", self, dunder, [other], doing=f"{dunder} of {self._llmkit_type}"
            )

    method.__name__ = dunder
    return method


for _name in _BINARY:
    for _prefix in ("", "r"):
        setattr(RemoteObject, f"__{_prefix}{_name}__", _special(_prefix + _name, 2))
for _name in _COMPARE:
    setattr(RemoteObject, f"__{_name}__", _special(_name, 2))
for _name in _UNARY:
    setattr(RemoteObject, f"__{_name}__", _special(_name, 1))


class RemoteModule(RemoteObject):
    """The learner's module in a worker; ``module_files`` reads its grader-side file list."""

    __slots__ = ()

    @property
    def __llmkit_files__(self) -> tuple[str, ...]:
        return tuple(self._llmkit_worker.original_files.values())


def is_remote(value) -> bool:
    return isinstance(value, RemoteObject)


def worker_of(value) -> Worker | None:
    return object.__getattribute__(value, "_llmkit_worker") if isinstance(value, RemoteObject) else None


# --- learner code in a fresh process ------------------------------------------------------

# Linux carries a process's peak RSS across exec, so a child forked from the (large)
# grader would report at least the grader's size: a small launcher starts the learner's
# process and reports that process's own peak, from os.wait4.
_LAUNCHER = r"""
import os, subprocess, sys
proc = subprocess.Popen([sys.executable, *sys.argv[1:]])
_, status, usage = os.wait4(proc.pid, 0)
scale = 1 if sys.platform == "darwin" else 1024
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss * scale, flush=True)
"""
_CHILD_PRELUDE = """
{imports}
from llmkit.sandbox.audit import install_audit_hook as _install
_install({home!r}, {protected!r}, {allowed!r})
del _install
"""


@dataclass
class ScriptRun:
    returncode: int  # the learner's process's exit code (negative: killed by that signal)
    stdout: str  # what the learner's process printed
    stderr: str
    peak_rss_bytes: int  # its peak resident memory, from the OS
    timed_out: bool = False


def run_learner_script(
    script: str,
    args: list[str],
    *,
    module_files: list[str],
    inputs: dict[str, bytes] | None = None,
    preload: tuple[str, ...] = (),
    timeout_s: float = 90.0,
) -> ScriptRun:
    """Run ``script`` in a fresh Python process and measure it, for checks that need a
    process of its own (peak memory). The script gets the module's files (copies, in
    execution order) as a JSON list in ``sys.argv[1]``, then ``args``; it runs in a
    fresh directory holding ``inputs`` (name -> bytes). Under ``--sandbox`` the process
    obeys the sandbox's rules (limits, user, environment, audit hook); ``preload`` names
    engine modules the script needs, imported before the rules apply."""
    from llmkit.sandbox import active

    sandbox = active()
    user = sandbox.user if sandbox else None
    home = make_home(user)
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
            protected = [str(p) for p in sandbox.protected]
            allowed = [str(p) for p in sandbox.allowed]
            imports = "\n".join(f"import {name}" for name in preload)
            prelude = _CHILD_PRELUDE.format(
                imports=imports, home=str(home), protected=protected, allowed=allowed
            )
            child = prelude + script
        argv = ["-c", _LAUNCHER, "-I", "-c", child, json.dumps(copies), *args]
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        if sandbox is not None:
            proc = sandboxed_popen(argv, home, sandbox.limits, user, **pipes)
        else:
            proc = subprocess.Popen([sys.executable, *argv], cwd=home, start_new_session=True, **pipes)
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            return ScriptRun(-signal.SIGKILL, "", err.decode(errors="replace")[-2000:], 0, timed_out=True)
        lines = out.decode(errors="replace").rstrip("\n").split("\n")
        try:
            code, rss = (int(x) for x in lines[-1].split())
        except ValueError:
            code, rss = (proc.returncode or 1), 0
        return ScriptRun(code, "\n".join(lines[:-1]), err.decode(errors="replace")[-2000:], rss)
    finally:
        shutil.rmtree(home, ignore_errors=True)


# --- the session's sandbox ---------------------------------------------------------------


@dataclass
class Sandbox:
    """Workers for one grading run, one per exercise, restarted after a crash."""

    protected: list[Path]  # the worker may not read these (solutions, graders, other submissions)
    allowed: list[Path]  # ... except these (the interpreter's prefix, the engine package)
    limits: Limits = field(default_factory=Limits.from_env)
    user: pwd.struct_passwd | None = field(default_factory=unprivileged_user)
    workers: dict[str, Worker] = field(default_factory=dict)
    timeouts: dict[str, int] = field(default_factory=dict)
    current: Worker | None = None  # the worker of the test running now
    import_errors: dict[str, Exception] = field(default_factory=dict)  # a module that cannot load, once
    _fork_server: ForkServer | None = None

    def __post_init__(self) -> None:
        match_worker_allocator()

    def module(self, exercise_id: str, files: list[Path], banned: tuple[str, ...]) -> RemoteModule:
        """The exercise's module in a live worker (started, or restarted after a crash)."""
        worker = self.workers.get(exercise_id)
        if self.timeouts.get(exercise_id, 0) >= self.limits.timeouts_per_exercise:
            raise SandboxFailure(
                f"not run: your code for exercise {exercise_id} already ran past the time limit "
                "earlier in this grading run"
            )
        if exercise_id in self.import_errors:
            cached = self.import_errors[exercise_id]
            raise type(cached)(str(cached)) from None
        for other in [i for i in self.workers if i != exercise_id]:
            self.workers.pop(other).close()  # one torch process at a time: graders run file by file
        if worker is not None and worker.alive and worker.module is not None:
            self.current = worker
            return worker.module
        if worker is not None:
            worker.close()
        sources = " ".join(Path(f).read_text(encoding="utf-8", errors="replace") for f in files)
        preload = ["triton", "triton.language"] if "triton" in sources else []
        worker = Worker(self, exercise_id, files, banned, preload)
        self.workers[exercise_id] = worker
        self.current = worker
        name = f"llmkit_submission.{Path(files[0]).parent.name}.{Path(files[0]).stem}"
        try:
            module = worker.request(
                "load", worker.copies, exercise_id, list(banned), name, doing="importing your module",
                timeout_s=self.limits.start_timeout_s,
            )  # fmt: skip
        except Exception as exc:
            # The import runs the same code each time: one failure stands for every test.
            self.import_errors[exercise_id] = exc
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
            self._fork_server = ForkServer()
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
