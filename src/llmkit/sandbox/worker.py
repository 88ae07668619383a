"""The sandbox worker: the only process where a submission's code runs.

``python -I -m llmkit.sandbox.worker FD`` is the fork server (:func:`fork_server`):
it imports torch and the engine once, then forks one worker per exercise. A
worker (:func:`become_worker`) takes on its order's limits, user, session,
directory and environment, installs the audit hook (:mod:`llmkit.sandbox.audit`),
loads the module from copies of its files and answers requests (get an
attribute, call, apply an operator, iterate, run ``value_and_grad`` or
``measure_memory``) until the grader closes the channel. Objects that are not
plain data stay here, in a handle table, and travel as references.

Nothing in a worker is trusted: the learner's code can change anything in it.
The grader decodes every answer as plain data and computes every verdict itself.
"""

from __future__ import annotations

import importlib
import operator
import os
import sys
import traceback

import torch

from llmkit.sandbox import wire
from llmkit.sandbox.audit import apply_limits, install_audit_hook

BUILTINS = {
    "iter": iter,
    "len": len,
    "bool": bool,
    "repr": repr,
    "str": str,
    "float": float,
    "int": int,
    "getitem": operator.getitem,
    "setitem": operator.setitem,
    "contains": operator.contains,
}
WORKER_ORACLES = ("llmkit.oracles.scalar_autograd", "llmkit.oracles.lora")
ENGINE: dict = {}  # engine functions run next to the learner's code, bound at start-up
SNAPSHOT_BYTES = 16 * 2**20  # input storages up to this size are compared byte for byte after a call


class Handles:
    """Objects kept in the worker, by reference id, with a count of live proxies."""

    def __init__(self) -> None:
        self.objects: dict[int, object] = {}
        self.counts: dict[int, int] = {}
        self.by_identity: dict[int, int] = {}
        self.next_id = 1

    def ref(self, obj) -> dict:
        rid = self.by_identity.get(id(obj))
        if rid is None or self.objects.get(rid) is not obj:
            rid = self.next_id
            self.next_id += 1
            self.objects[rid] = obj
            self.by_identity[id(obj)] = rid
            self.counts[rid] = 0
        self.counts[rid] += 1
        return {"ref": rid, "type": type(obj).__name__[:80], "callable": callable(obj)}

    def get(self, doc) -> object:
        rid = doc.get("ref", doc.get("cached"))
        if rid not in self.objects:
            raise wire.WireError(f"unknown reference {rid!r}")
        return self.objects[rid]

    def hold(self, rid: int, obj) -> None:
        """Keep a grader input under a grader-chosen (negative) id."""
        self.objects[rid] = obj
        self.counts[rid] = 1

    def release(self, rid: int) -> None:
        if rid in self.counts:
            self.counts[rid] -= 1
            if self.counts[rid] <= 0:
                obj = self.objects.pop(rid)
                del self.counts[rid]
                if self.by_identity.get(id(obj)) == rid:
                    del self.by_identity[id(obj)]


def _error(exc: BaseException, files: set[str]) -> dict:
    frames = traceback.extract_tb(exc.__traceback__)
    learner = [f for f in frames if f.filename in files]
    where = learner[-1] if learner else None
    lines = traceback.format_list(learner[-6:]) if learner else []
    return {
        "type": type(exc).__name__[:100],
        "module": type(exc).__module__[:100],
        "message": str(exc)[:4000] if not isinstance(exc, SystemExit) else f"exit({exc.code!r})",
        "traceback": "".join(lines)[-4000:],
        "in_learner_code": bool(frames) and frames[-1].filename in files,
        "where": [os.path.basename(where.filename), where.name, where.lineno] if where else None,
    }


class Server:
    def __init__(self, request_fd: int, response_fd: int) -> None:
        self.request_fd, self.response_fd = request_fd, response_fd
        self.handles = Handles()
        self.files: set[str] = set()
        self.exercise = ""
        self.banned: tuple[str, ...] = ()

    # --- one request ------------------------------------------------------------

    def serve(self) -> None:
        while True:
            try:
                doc, buffers = wire.read_message(self.request_fd)
            except EOFError:
                return
            encoder = wire.Encoder(self.handles.ref)
            try:
                holds = wire.Decoder(buffers, self.handles.get, allow_pickle=True)
                for rid, value in doc.get("hold", []):
                    self.handles.hold(rid, holds.decode(value))
                for rid in doc.get("release", []):
                    self.handles.release(rid)
                decoder = wire.Decoder(buffers, self.handles.get, allow_pickle=True)
                args = decoder.decode(doc["args"])
                versions = [t._version for t in decoder.tensors]
                snapshots = {i: b.clone() for i, b in decoder.storages.items() if b.numel() <= SNAPSHOT_BYTES}
                banned_calls: list[str] = []
                value = self.run(doc["op"], args, banned_calls)
                reply = {"value": encoder.encode(value), "banned_calls": [str(c) for c in banned_calls]}
                reply.update(self.changed_inputs(decoder, versions, snapshots, encoder))
            except BaseException as exc:  # noqa: BLE001 - everything the learner raises is reported
                if isinstance(exc, KeyboardInterrupt):
                    raise
                encoder = wire.Encoder(self.handles.ref)
                reply = {"error": _error(exc, self.files)}
            wire.write_message(self.response_fd, reply, encoder.buffers)

    def changed_inputs(self, decoder, versions, snapshots, encoder) -> dict:
        """Input storages the call changed in place (by content, or by version counter for
        storages too large to snapshot), so the grader can apply the same change."""
        storages = {i for i, snap in snapshots.items() if not torch.equal(decoder.storages[i], snap)}
        holds = set()
        for (kind, key), t, version in zip(decoder.sources, decoder.tensors, versions):
            if t._version != version:
                (storages if kind == "storage" else holds).add(key)
        reply = {}
        if storages:
            reply["mutated"] = encoder.encode([[i, decoder.storages[i]] for i in sorted(storages)])
        if holds:
            held = [[rid, self.handles.objects[rid]] for rid in sorted(holds)]
            reply["mutated_holds"] = encoder.encode(held)
        return reply

    def run(self, op: str, args, banned_calls: list[str]):
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise wire.WireError(f"unknown operation {op!r}")
        if not self.banned or op == "release":
            return handler(*args)
        from llmkit.bans import trap_banned_calls

        with trap_banned_calls(self.banned, self.files, self.exercise) as trap:
            try:
                return handler(*args)
            finally:
                banned_calls.extend(trap.calls)

    # --- operations -------------------------------------------------------------

    def op_load(self, files: list[str], exercise: str, banned: list[str], name: str):
        from llmkit.impl import load_module_from_files

        self.files, self.exercise, self.banned = set(files), exercise, tuple(banned)
        module = load_module_from_files([os.path.abspath(f) for f in files], exercise, name)
        return module

    def op_getattr(self, obj, name: str):
        return getattr(obj, name)

    def op_getattrs(self, objects: list, name: str) -> list:
        return [getattr(obj, name) for obj in objects]

    def op_setattr(self, obj, name: str, value) -> None:
        setattr(obj, name, value)

    def op_delattr(self, obj, name: str) -> None:
        delattr(obj, name)

    def op_call(self, fn, args: list, kwargs: dict):
        return fn(*args, **kwargs)

    def op_method(self, obj, name: str, args: list, kwargs: dict):
        return getattr(obj, name)(*args, **kwargs)

    def op_special(self, obj, name: str, args: list):
        """A special method looked up on the type, as Python's operators do; a missing
        one is NotImplemented, so the grader's side can try the reflected operation."""
        method = getattr(type(obj), name, None)
        if method is None:
            return NotImplemented
        return method(obj, *args)

    def op_builtin(self, name: str, obj, *args):
        if name not in BUILTINS:
            raise wire.WireError(f"unknown builtin {name!r}")
        result = BUILTINS[name](obj, *args)
        if name in ("repr", "str"):
            return str.__str__(result)[:2000] if isinstance(result, str) else "<not a string>"
        return result

    def op_next_batch(self, iterator, n: int):
        """Up to ``n`` items and whether the iterator is exhausted."""
        items = []
        for _ in range(max(1, min(int(n), 4096))):
            try:
                items.append(next(iterator))
            except StopIteration:
                return [items, True]
        return [items, False]

    def op_value_and_grad(self, fn, inputs, weights, kwargs, params_of, hint):
        got = ENGINE["value_and_grad"](fn, inputs, weights, kwargs=kwargs, params_of=params_of, hint=hint)
        return tuple(got)

    def op_measure_memory(self, fn, inputs, kwargs, trace_python):
        return tuple(ENGINE["measure_memory"](fn, inputs, kwargs=kwargs, trace_python=trace_python))

    def op_engine(self, target: str, args: list, kwargs: dict):
        """An engine helper marked ``beside_learner_code``, run here on the learner's objects."""
        module, _, name = target.partition(":")
        if not module.startswith("llmkit.") or not name.isidentifier():
            raise wire.WireError(f"not an engine helper: {target!r}")
        fn = getattr(importlib.import_module(module), name)
        return getattr(fn, "__wrapped__", fn)(*args, **kwargs)

    def op_release(self):
        return None


def prepare_engine() -> None:
    """One torch thread; the engine functions bound before any learner code runs
    (replacing the module attributes later changes nothing here)."""
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover
        pass
    import llmkit.bans  # noqa: F401  (the ban trap)
    import llmkit.impl  # noqa: F401

    # TEMPORARY (issue 11, being moved out): oracles are not in the jail.
    for name in WORKER_ORACLES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    from llmkit.checks import value_and_grad
    from llmkit.memory import measure_memory

    ENGINE.update(value_and_grad=value_and_grad, measure_memory=measure_memory)


def _prctl(option: int, value: int) -> None:
    import ctypes

    ctypes.CDLL(None).prctl(option, value, 0, 0, 0)


def die_with_parent() -> None:
    """Be killed when the parent process dies, so no worker outlives its grader."""
    import signal

    _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def not_dumpable() -> None:
    """No process of the same user may trace this one, or read or write its memory
    through /proc (the fork server and the script launcher share a user with workers)."""
    _prctl(4, 0)  # PR_SET_DUMPABLE


def confine(order: dict) -> None:
    """In a fresh child, before anything of the learner's: die with the parent, a
    session of its own, the order's limits, its directory, environment and user
    (when the grader is root), no new privileges, stdin/stdout to /dev/null and
    stderr to ``stderr.txt`` in its directory."""
    import tempfile

    die_with_parent()
    os.setsid()
    apply_limits(order["limits"])
    home = order["home"]
    null = os.open(os.devnull, os.O_RDWR)
    err = os.open(os.path.join(home, "stderr.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    if order.get("uid") is not None:
        os.fchown(err, order["uid"], order["gid"])
        os.setgroups([])
        os.setresgid(order["gid"], order["gid"], order["gid"])
        os.setresuid(order["uid"], order["uid"], order["uid"])
    _prctl(38, 1)  # PR_SET_NO_NEW_PRIVS
    not_dumpable()
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(err, 2)
    os.close(null)
    os.close(err)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the process's own streams
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    os.chdir(home)
    os.environ.clear()
    os.environ.update(order["env"])
    tempfile.tempdir = None


def become_worker(order: dict, channel: int) -> None:
    """In a freshly forked child: take on the sandbox's rules, then serve ``channel``."""
    from llmkit.sandbox.forkserver import announce_self
    from llmkit.sandbox.seccomp import install_filter

    confine(order)
    for module in order.get("preload", []):
        try:
            __import__(module)
        except ImportError:
            pass
    if order.get("seccomp"):
        install_filter(allow_exec=bool(order.get("allow_exec")))
    install_audit_hook(order["home"], order["protected"], order["allowed"])
    announce_self(channel)
    wire.write_message(channel, {"value": "ready", "banned_calls": []}, [])
    Server(channel, channel).serve()


def fork_server(control_fd: int) -> None:
    """Import torch and the engine once, then fork a fresh worker for each order.

    Orders arrive as JSON packets on ``control_fd`` (a SOCK_SEQPACKET socket). A fork
    order answers with the child's pid and, attached, one end of a socket pair that
    is the child's channel; a status order waits for a child and answers its exit code.
    """
    import json
    import socket

    die_with_parent()
    not_dumpable()
    prepare_engine()
    control = socket.socket(fileno=control_fd)
    exited: dict[int, int] = {}
    while True:
        packet = control.recv(1 << 16)
        if not packet:
            return
        order = json.loads(packet)
        if order["op"] == "fork":
            mine, theirs = socket.socketpair()
            mine.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)  # the worker's pid, translated
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    control.close()
                    mine.close()
                    become_worker(order, theirs.detach())
                    code = 0
                except BaseException:  # noqa: BLE001 - a failed start-up, said on stderr
                    traceback.print_exc()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
            theirs.close()
            socket.send_fds(control, [json.dumps({"pid": pid}).encode()], [mine.fileno()])
            mine.close()
        elif order["op"] == "status":
            pid = order["pid"]
            if pid not in exited:
                try:
                    _, status = os.waitpid(pid, 0)
                    exited[pid] = os.waitstatus_to_exitcode(status)
                except ChildProcessError:
                    exited[pid] = -9
            control.send(json.dumps({"returncode": exited.pop(pid)}).encode())


if __name__ == "__main__":
    # os._exit: the learner's atexit handlers and lingering threads never decide the exit code.
    code = 1
    try:
        fork_server(int(sys.argv[1]))
        code = 0
    except BaseException:  # noqa: BLE001 - said on stderr, which the grader shows
        traceback.print_exc()
        sys.stderr.flush()
    finally:
        os._exit(code)
