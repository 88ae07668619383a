"""The sandbox worker: the only process where a submission's code runs.

Started by :mod:`llmkit.sandbox.client` as ``python -I -m llmkit.sandbox.worker
REQUEST_FD RESPONSE_FD`` in a fresh directory holding copies of the module's
files. It loads the module, then answers requests (get an attribute, call,
apply an operator, iterate, run ``value_and_grad``/``measure_memory``) until the
grader closes the channel. Objects that are not plain data stay here, in a
handle table, and travel as references.

Nothing in this process is trusted: the learner's code can change anything in
it. The grader decodes every answer as plain data and computes every verdict
itself. The audit hook below keeps honest mistakes and casual cheating (reading
the graders, writing outside the sandbox, starting processes, signalling other
processes) from working; the real boundary is the process, its limits and the
grader's decoder.
"""

from __future__ import annotations

import operator
import os
import sys
import traceback

import torch

from llmkit.sandbox import wire

# Events that start processes, load native libraries or signal other processes.
BLOCKED_EVENTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "subprocess.Popen",
        "pty.spawn",
        "ctypes.dlopen",
        "os.killpg",
        "signal.pthread_kill",
        "socket.connect",
        "socket.bind",
    }
)
# Events that change the file system: allowed only inside the sandbox directory.
WRITE_EVENTS = frozenset(
    {
        "os.remove",
        "os.rmdir",
        "os.rename",
        "os.truncate",
        "os.chmod",
        "os.chown",
        "os.link",
        "os.symlink",
        "os.utime",
        "os.mkdir",
        "shutil.rmtree",
        "shutil.move",
        "shutil.copyfile",
    }
)
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
ENGINE: dict = {}  # engine functions run next to the learner's code, bound at start-up
SNAPSHOT_BYTES = 16 * 2**20  # input storages up to this size are compared byte for byte after a call
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def install_audit_hook(home: str, protected: list[str], allowed: list[str]) -> None:
    """Refuse reads under ``protected`` (unless under ``allowed``), writes outside
    ``home``, new processes, native library loads and signals to other processes."""
    home = os.path.realpath(home) + os.sep
    protected = [os.path.realpath(p) + os.sep for p in protected]
    allowed = [os.path.realpath(p) + os.sep for p in allowed]
    writable = (home, "/dev/null" + os.sep)
    realpath, fspath, getpid = os.path.realpath, os.fsdecode, os.getpid

    def resolve(path) -> str | None:
        if isinstance(path, int):
            return None
        try:
            return realpath(fspath(path)) + os.sep
        except (TypeError, ValueError):
            return None

    def refuse(what: str) -> None:
        raise PermissionError(f"the grading sandbox does not allow {what}")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path = resolve(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(flags & WRITE_FLAGS)
            if writes and not path.startswith(writable):
                refuse(f"writing {path[:-1]}")
            if any(path.startswith(p) for p in protected) and not any(path.startswith(a) for a in allowed):
                refuse(f"reading {path[:-1]}")
        elif event in WRITE_EVENTS:
            for arg in args[:2]:
                path = resolve(arg) if isinstance(arg, (str, bytes, os.PathLike)) else None
                if path is not None and not path.startswith(home):
                    refuse(f"{event} on {path[:-1]}")
        elif event == "os.kill":
            if args[0] != getpid():
                refuse("signalling other processes")
        elif event in BLOCKED_EVENTS:
            refuse(f"{event} (starting processes, loading native libraries or networking)")

    sys.addaudithook(hook)


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

    def op_release(self):
        return None


def main(argv: list[str]) -> int:
    request_fd, response_fd = int(argv[1]), int(argv[2])
    settings, _ = wire.read_message(request_fd)
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover
        pass
    # Engine functions, taken before any learner code runs (replacing the module attributes
    # later changes nothing here; the grader's decoder stays the real boundary).
    import llmkit.bans  # noqa: F401  (the ban trap)
    import llmkit.impl  # noqa: F401
    from llmkit.checks import value_and_grad
    from llmkit.memory import measure_memory

    ENGINE.update(value_and_grad=value_and_grad, measure_memory=measure_memory)

    for module in settings.get("preload", []):
        try:
            __import__(module)
        except ImportError:
            pass
    install_audit_hook(settings["home"], settings["protected"], settings["allowed"])
    server = Server(request_fd, response_fd)
    wire.write_message(response_fd, {"value": "ready", "banned_calls": []}, [])
    server.serve()
    return 0


if __name__ == "__main__":
    # os._exit: the learner's atexit handlers and lingering threads never decide the exit code.
    code = 1
    try:
        code = main(sys.argv)
    finally:
        os._exit(code)
