"""The sandbox worker: the only process where a submission's code runs.

``python -I -m llmkit.sandbox.worker FD`` is the fork server (:func:`fork_server`):
it imports torch and the engine once, then forks one worker per exercise. A
worker (:func:`become_worker`) takes on its order's limits, user, session,
directory and environment, installs the audit hook (:mod:`llmkit.sandbox.audit`),
loads the module from copies of its files and answers requests (get an
attribute, call, apply an operator, iterate) until the grader closes the
channel. Objects that are not plain data stay here, in a handle table, and
travel as references. A request may carry a batch of queued operations
(see :meth:`llmkit.sandbox.channel.Worker.deferring`), run first, each result kept
under the id the grader chose for it: many operations, one round trip. No engine
helper runs here: the grader drives the learner's objects one operation at a time.

Nothing in a worker is trusted: the learner's code can change anything in it.
The grader decodes every answer as plain data and computes every verdict itself.
"""

from __future__ import annotations

import contextlib
import operator
import os
import sys
import traceback

import torch

from llmkit.sandbox import wire
from llmkit.sandbox.audit import install_audit_hook
from llmkit.sandbox.confine import confine, die_with_parent, not_dumpable  # noqa: F401 (names kept here)

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
    "list": list,
    "isinstance": isinstance,
}
OPERATORS = {
    name: getattr(operator, name + "_" if name in ("and", "or") else name)
    for name in [
        "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul",
        "and", "or", "xor", "lshift", "rshift", "lt", "le", "gt", "ge",
        "neg", "pos", "abs", "invert",
    ]
}  # fmt: skip
QUEUEABLE = frozenset({"getattr", "call", "method", "operator", "builtin", "value"})  # ops a batch may hold
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
                versions: list[int] = []  # of every input tensor, before anything ran on it
                snapshots: dict[int, torch.Tensor] = {}  # input storages, byte for byte
                banned_calls: list[str] = []
                batch = doc.get("batch", [])
                with self.trapped(banned_calls, skip=doc["op"] == "release" and not batch):
                    queued = [self.run_queued(step, decoder, versions, snapshots) for step in batch]
                    args = self.decode(doc["args"], decoder, versions, snapshots)
                    value = self.run(doc["op"], args)
                reply = {"value": encoder.encode(value), "banned_calls": [str(c) for c in banned_calls]}
                if queued:
                    reply["batch"] = queued
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

    @staticmethod
    def decode(doc, decoder: wire.Decoder, versions: list[int], snapshots: dict[int, torch.Tensor]):
        """``doc`` decoded; the version counters and (small) storages of the input tensors
        it brings are recorded first, so :meth:`changed_inputs` can tell what changed."""
        start = len(decoder.tensors)
        value = decoder.decode(doc)
        versions.extend(t._version for t in decoder.tensors[start:])
        for i, b in decoder.storages.items():
            if i not in snapshots and b.numel() <= SNAPSHOT_BYTES:
                snapshots[i] = b.clone()
        return value

    def run(self, op: str, args):
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise wire.WireError(f"unknown operation {op!r}")
        return handler(*args)

    def run_queued(self, step, decoder, versions, snapshots) -> list:
        """One queued operation: run it and keep its result under the grader's id."""
        if not (type(step) is list and len(step) == 3 and type(step[0]) is int and step[0] < 0):
            raise wire.WireError("bad queued operation")
        rid, op, args = step
        if op not in QUEUEABLE:
            raise wire.WireError(f"operation {op!r} cannot be queued")
        value = self.run(op, self.decode(args, decoder, versions, snapshots))
        self.handles.hold(rid, value)
        return [type(value).__name__[:80], callable(value)]

    @contextlib.contextmanager
    def trapped(self, banned_calls: list[str], skip: bool = False):
        """The exercise's banned calls trapped (and recorded) for the block."""
        if not self.banned or skip:
            yield
            return
        from llmkit.bans import trap_banned_calls

        # Only learner code runs in this block: every banned kernel counts, even one
        # reached with no learner frame on the stack (a library function handed out).
        with trap_banned_calls(self.banned, self.files, self.exercise, block_is_learner_code=True) as trap:
            try:
                yield
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

    def op_operator(self, name: str, *operands):
        """A Python operator (``a + b``, ``-a``, ``a < b``) with its whole protocol, the
        reflected method included: what a queued operator on a handle runs."""
        if name not in OPERATORS:
            raise wire.WireError(f"unknown operator {name!r}")
        return OPERATORS[name](*operands)

    def op_value(self, value):
        """``value`` itself: sent back as plain data, or kept as a handle when queued
        (a grader's tensor kept here, to be differentiated against later)."""
        return value

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
    import llmkit.toymodels  # noqa: F401  (models graders send, pickled)


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
