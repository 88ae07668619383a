"""The grader's end of one worker: its start, the channel's requests and replies, and
in-place writes copied back.

A :class:`Worker` holds one exercise's module in one sandboxed process. Every
request has a wall-clock limit; a crash, timeout or garbage answer stops the
worker and fails the test with a :class:`SandboxFailure`, and every later call on
that worker fails the same way. Learner exceptions come back as the same built-in
exception type (``pytest.raises(ValueError)`` works) carrying the worker's
traceback lines.

Round trips cost a few hundred microseconds each, so operations whose answers are
objects (attribute reads, calls, operators, indexing) can be queued while the
grader holds :meth:`Worker.deferring` (graders use :func:`llmkit.sandbox.pipelined`)
and travel together, in the next request that needs an answer.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import select
import shutil
import signal
import time
from pathlib import Path

import torch

from llmkit.failures import BannedCallError, CheckFailure
from llmkit.sandbox import wire
from llmkit.sandbox.launch import (
    Limits,
    SandboxFailure,
    make_home,
    process_cpu_clock,
    resource_limits,
    worker_environment,
)
from llmkit.sandbox.remote import RemoteModule, RemoteObject

# A worker's sandbox is a llmkit.sandbox.session.Sandbox, which starts workers: not
# imported here (that would make a cycle).
Sandbox = object

CACHE_MIN_BYTES = 1 << 16  # inputs at least this large are sent once and kept by the worker


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
        jail = sandbox.jail
        self.home = make_home(sandbox.root, jail.user)
        self.alive = False
        self.channel = -1
        self.fatal: SandboxFailure | None = None
        self.pending_release: list[int] = []
        self.held: dict[int, tuple[torch.Tensor, int, int | None]] = {}  # id -> (tensor, version, hold id)
        self.next_hold = -1
        self.queue: list[tuple[RemoteObject, str, tuple]] | None = None  # queued operations, while deferring
        self.module: RemoteModule | None = None
        copies = []
        for i, path in enumerate(files):
            target = self.home / "module" / f"{i}_{Path(path).name}"
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(path, target)
            copies.append(str(target))
        if jail.user is not None:
            for path in [self.home / "module", *copies]:
                os.chown(path, jail.uid, jail.gid)
        self.copies = copies
        self.original_files = {c: str(f) for c, f in zip(copies, files)}
        order = {
            "op": "fork",
            "home": str(self.home),
            "env": worker_environment(self.home),
            "limits": resource_limits(self.limits, jail.user is not None),
            "uid": jail.uid,
            "gid": jail.gid,
            "seccomp": jail.kind != "trusted",
            "allow_exec": bool(preload) and torch.cuda.is_available(),  # Triton runs ptxas on a GPU
            "protected": [str(p) for p in sandbox.protected],
            "allowed": [str(p) for p in sandbox.allowed],
            "preload": preload,
        }
        self.returncode: int | None = None
        server = sandbox.fork_server()
        try:
            self.jail_pid, self.pid, self.channel = server.fork(order, self.limits.start_timeout_s)
        except SandboxFailure as exc:
            tail = self.stderr_tail()
            raise SandboxFailure(f"{exc}{': ' + tail if tail else ''}") from None
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
            self.returncode = self.sandbox.fork_server().wait(self.jail_pid)
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
            key = (self.exercise_id, *self.original_files.values())
            self.sandbox.timeouts[key] = self.sandbox.timeouts.get(key, 0) + 1
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

    def request(
        self,
        op: str,
        *args,
        doing: str | None = None,
        timeout_s: float | None = None,
        hold: list[tuple[int, object]] = (),
    ):
        """Run ``op`` in the worker on ``args``; ``hold`` (id, value) pairs are decoded
        and kept by the worker first, as the inputs :class:`Held` names, then the queued
        operations run (see :meth:`deferring`), then ``op``."""
        doing = doing or op
        if not self.alive:
            _fail(self.fatal or SandboxFailure(f"the process running your code had stopped before {doing}"))
        batch: list[tuple[RemoteObject, str, tuple]] = []
        if self.queue:
            batch, self.queue = self.queue, []
            doing = f"{doing} (after {len(batch)} queued operations on your objects)"
        holds: list[tuple[int, object]] = list(hold)
        encoder = wire.Encoder(_grader_ref, allow_pickle=True, cached=lambda t: self._hold_id(t, holds))
        doc = {"op": op}
        if batch:
            doc["batch"] = [[_rid(promise), bop, encoder.encode(bargs)] for promise, bop, bargs in batch]
        doc["args"] = encoder.encode(tuple(args))
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
            if batch:
                _describe_promises(batch, reply.get("batch"))
        except (wire.WireError, TypeError, ValueError, KeyError, AttributeError, IndexError) as bad:
            _fail(self._garbage(doing, bad))
        self._copy_back(mutated, mutated_holds, encoder.storage_owners)
        if calls:
            names = ", ".join(calls)[:500]
            raise BannedCallError(f"exercise {self.exercise_id} bans calls your code made: {names}")
        return value

    # --- queued operations ------------------------------------------------------

    def defer(self, op: str, *args) -> RemoteObject:
        """Queue ``op`` on ``args`` (see :meth:`deferring`); the answer is a handle to its
        result, which the worker keeps under an id chosen here."""
        if self.queue is None:
            raise RuntimeError("Worker.defer outside Worker.deferring()")
        if not self.alive:
            _fail(self.fatal or SandboxFailure("the process running your code had stopped"))
        promise = RemoteObject._make(self, self.next_hold, "object", True)
        self.next_hold -= 1
        self.queue.append((promise, op, args))
        return promise

    @contextlib.contextmanager
    def deferring(self):
        """Inside the block, operations on this worker's handles whose answers are objects
        (attribute reads, calls, operators, indexing: :class:`RemoteObject` queues them
        itself) are queued instead of sent, and their results are handles at once.
        The queue travels with the next request that needs an answer (reading data,
        ``len``, ``bool``, ...), which the worker runs after it, or at the end of the
        block: one round trip for many operations. An error in a queued operation is
        raised by that request; later queued operations do not run."""
        if self.queue is not None:  # nested: the outer block sends the queue
            yield
            return
        self.queue = []
        try:
            yield
            if self.queue:
                self.request("release", doing="running queued operations on your objects")
        finally:
            self.queue = None

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

    def send_inputs(self, *values, doing: str = "receiving inputs") -> list[Held]:
        """Send ``values`` (plain data) in a request of their own; the worker decodes
        them into fresh objects and keeps them until :meth:`forget_inputs`. Pass the
        returned :class:`Held` markers in place of the values to later requests."""
        held = []
        for value in values:
            held.append(Held(self.next_hold, value))
            self.next_hold -= 1
        self.request("release", doing=doing, hold=[(h.rid, h.value) for h in held])
        return held

    def forget_inputs(self, held: list[Held]) -> None:
        """Let the worker drop inputs from :meth:`send_inputs` (with the next request)."""
        self.pending_release.extend(h.rid for h in held)

    def timed_call(self, fn: RemoteObject, args: list, kwargs: dict, doing: str):
        """``fn(*args, **kwargs)`` in the worker on inputs it has never seen, and the CPU
        time the OS counted for the worker from before the inputs were sent until the
        answer came back (read here, never in the worker). The inputs travel in a
        request of their own, so the call's request is the same few bytes every time;
        that request is inside the bracket too, so nothing the learner's code does when
        the inputs arrive (say, work ahead of the call) escapes the clock."""
        start = self.cpu_seconds()
        if start is None:
            _fail(self.fatal or SandboxFailure("the process running your code stopped before a timing"))
        held = self.send_inputs(list(args), dict(kwargs), doing=f"receiving inputs for {doing}")
        try:
            value = self.request("call", fn, *held, doing=doing)
            end = self.cpu_seconds()
        finally:
            self.forget_inputs(held)
        if end is None:
            _fail(self.fatal or SandboxFailure("the process running your code stopped during a timing"))
        return value, end - start

    def release_holds(self) -> None:
        """Forget the inputs kept for this test (called between tests)."""
        self.pending_release.extend(rid for _, _, rid in self.held.values() if rid is not None)
        self.held.clear()

    def _copy_back(self, mutated, mutated_holds, owners: dict[int, tuple[torch.Tensor, bool]]) -> None:
        """Apply the learner's in-place writes to the grader's tensors, as one process would
        have, when the argument was an output buffer (every element poisoned, see
        :func:`llmkit.poison.poison`; e.g. ``out=``). Any other input changed in place
        fails the call: inputs are read-only, and a grader must not see them altered."""
        from llmkit.poison import is_poisoned

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


class Held:
    """An input the worker already holds (see :meth:`Worker.send_inputs`); it travels as its id."""

    __slots__ = ("rid", "value")

    def __init__(self, rid: int, value) -> None:
        self.rid, self.value = rid, value


def _rid(value: RemoteObject) -> int:
    return object.__getattribute__(value, "_llmkit_id")


def _describe_promises(batch: list, described) -> None:
    """Give the handles of queued results the type names the worker reported."""
    if not (isinstance(described, list) and len(described) == len(batch)):
        raise wire.WireError("bad batch answer")
    for (promise, _, _), item in zip(batch, described):
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise wire.WireError("bad batch answer")
        object.__setattr__(promise, "_llmkit_type", item[0][:80])
        object.__setattr__(promise, "_llmkit_callable", item[1] is True)


def _grader_ref(value) -> dict:
    if isinstance(value, RemoteObject):
        return {"ref": object.__getattribute__(value, "_llmkit_id")}
    if isinstance(value, Held):
        return {"cached": value.rid}
    raise TypeError(f"{type(value).__name__} is not plain data")


_ENGINE_EXCEPTIONS = {"ImplementationError", "BannedCallError", "CheckFailure", "OutOfBoundsAccess"}


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
