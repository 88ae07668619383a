"""Peak memory of one call: measured by the OS in a fresh process (the verdict), or
from the tensors the call creates (advice for learners).

:func:`peak_memory_of_call` is what graders use. It runs the learner's function once
on the grader's inputs in a fresh Python process (under ``--sandbox``, in the jail,
through :func:`llmkit.sandbox.script.run_learner_script`) and takes that process's
peak resident memory from the OS (``os.wait4``). The same harness runs a control
process that loads the same inputs and libraries but never loads or calls the
learner's code; the result is the difference of the two peaks. Nothing the learner's
code does can lower a peak the kernel recorded, and it never runs in the control, so
it cannot raise the baseline: memory allocated and freed at import time, in numpy,
in other threads, counts. Inputs travel as raw bytes in files the grader writes; the
call's result comes back as plain data (:mod:`llmkit.sandbox.wire`, never pickle) for
the grader to check, so a call that skips the work earns nothing.

:func:`measure_memory` is the tensor-level tracker. It is **advisory only**: it runs
inside the learner's process (anything there can be replaced: the tracker itself,
its numbers), and it sees torch storages only. Public tests use it to say *which*
tensor was large; it never decides a grade, and it never runs in a sandbox worker.
It runs ``fn(*inputs, **kwargs)`` under a ``TorchDispatchMode`` that sees every aten
operation. Each storage an operation returns that did not exist before the call is
counted as an allocation; a ``weakref.finalize`` on the storage subtracts it again
the moment torch frees it. Views share their base's storage and are not counted
twice; in-place ops and ``out=`` buffers count once; the caller's inputs (and
anything else that existed before the call) count zero. The peak is the most bytes
held at once by storages the call created, outputs included. NumPy buffers are not
torch storages; with ``trace_python=True`` the peak of ``tracemalloc`` (which NumPy
reports its buffers to) is returned as ``python_peak_bytes``. Not seen: scratch
memory *inside* a single aten kernel, and work done on other threads.
"""

from __future__ import annotations

import tracemalloc
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from llmkit.checks import as_plain_tensor


class MemoryUse(NamedTuple):
    output: Any  # fn's result; tensors come back as plain CPU tensors
    peak_bytes: int  # most bytes held at once in storages created during the call
    end_bytes: int  # bytes still held by those storages when fn returned (its outputs, caches)
    total_bytes: int  # sum of every allocation, freed or not
    allocations: int  # number of new storages
    largest_bytes: int  # the largest single new storage ...
    largest_op: str  # ... the aten op that created it ...
    largest_shape: tuple[int, ...]  # ... and the shape of the tensor it first appeared as
    python_peak_bytes: int  # tracemalloc peak during the call (NumPy buffers, Python objects); -1 if off


def format_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _storage(t: torch.Tensor):
    try:
        return t.untyped_storage()
    except (RuntimeError, NotImplementedError):  # sparse, nested or storage-less tensors
        return None


class _StorageTracker(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}  # id(storage) -> bytes, storages created during the call
        self.seen_before: set[int] = set()  # id(storage) of storages that existed before
        self.finalizers: list[weakref.finalize] = []
        self.current = self.peak = self.total = self.count = 0
        self.largest = (0, "", ())

    def remember_existing(self, tensors) -> None:
        for t in tensors:
            if isinstance(t, torch.Tensor):
                st = _storage(t)
                if st is not None and id(st) not in self.live and id(st) not in self.seen_before:
                    self.seen_before.add(id(st))
                    self.finalizers.append(weakref.finalize(st, self.seen_before.discard, id(st)))

    def _freed(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def _created(self, t: torch.Tensor, op: str) -> None:
        st = _storage(t)
        if st is None or id(st) in self.seen_before:
            return
        key, nbytes = id(st), st.nbytes()
        if key in self.live:  # a view or an in-place result; the storage may have been resized
            self.current += nbytes - self.live[key]
            self.live[key] = nbytes
        else:
            self.live[key] = nbytes
            self.count += 1
            self.total += nbytes
            self.current += nbytes
            self.finalizers.append(weakref.finalize(st, self._freed, key))
            if nbytes > self.largest[0]:
                self.largest = (nbytes, op, tuple(t.shape))
        self.peak = max(self.peak, self.current)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket not in _FRESH:  # torch.tensor(...) arrives as lift_fresh(new tensor)
            self.remember_existing(tree_flatten((args, kwargs))[0])  # e.g. globals made before the call
        out = func(*args, **kwargs)
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._created(t, str(func.overloadpacket.__name__))
        return out

    def detach_all(self) -> None:
        for f in self.finalizers:
            f.detach()
        self.finalizers.clear()


# TorchDispatchMode wraps __torch_dispatch__ so that torch.compile skips it, importing
# torch._dynamo (1-4 s) on the first op. Nothing here is compiled: unwrap it.
_StorageTracker.__torch_dispatch__ = getattr(
    _StorageTracker.__torch_dispatch__, "__wrapped__", _StorageTracker.__torch_dispatch__
)
_FRESH = (torch.ops.aten.lift_fresh, torch.ops.aten.lift_fresh_copy)


def _plain(value):
    return tree_map(lambda x: as_plain_tensor(x) if isinstance(x, torch.Tensor) else x, value)


def measure_memory(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    *,
    kwargs: dict | None = None,
    trace_python: bool = False,
) -> MemoryUse:
    """Run ``fn(*inputs, **kwargs)`` once and report the tensor memory it allocated
    (advisory: see the module's docstring; graders use :func:`peak_memory_of_call`).

    Tensors among ``inputs`` and ``kwargs`` (and any tensor that existed before the
    call) are not counted. The call runs with one torch thread (the count is restored
    afterwards): the per-op bookkeeping is Python, and idle OpenMP workers spinning
    against it made a busy 2-core machine up to 50x slower.
    """
    kwargs = kwargs or {}
    from llmkit.sandbox import worker_of

    if worker_of(fn) is not None:
        raise TypeError(
            "measure_memory is advisory and runs in-process only; grade memory with "
            "peak_memory_of_call (the OS's peak RSS of a fresh process)"
        )
    tracker = _StorageTracker()
    tracker.remember_existing(tree_flatten((list(inputs), kwargs))[0])
    started_tracing = trace_python and not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    python_base = tracemalloc.get_traced_memory()[0] if trace_python else 0
    if trace_python:
        tracemalloc.reset_peak()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # idle OpenMP workers spin against the Python-side bookkeeping
    try:
        with tracker:
            out = fn(*inputs, **kwargs)
        python_peak = tracemalloc.get_traced_memory()[1] - python_base if trace_python else -1
    finally:
        torch.set_num_threads(threads)
        if started_tracing:
            tracemalloc.stop()
    end_bytes = tracker.current  # measured while the outputs are still alive
    largest_bytes, largest_op, largest_shape = tracker.largest
    result = MemoryUse(
        output=_plain(out),
        peak_bytes=tracker.peak,
        end_bytes=end_bytes,
        total_bytes=tracker.total,
        allocations=tracker.count,
        largest_bytes=largest_bytes,
        largest_op=largest_op,
        largest_shape=largest_shape,
        python_peak_bytes=python_peak,
    )
    tracker.detach_all()
    return result


# --- peak RSS of one call, from the OS (the verdict) ----------------------------------

_HARNESS = r"""
import contextlib, json, sys
import torch
from llmkit.bans import trap_banned_calls
from llmkit.impl import load_module_from_files
from llmkit.sandbox import wire
torch.set_num_threads(1)
files = json.loads(sys.argv[1])
with open("order.json") as fh:
    order = json.load(fh)
tensors = []
with open("inputs.bin", "rb") as fh:
    for dtype, shape, nbytes in order["tensors"]:
        buf = bytearray(nbytes)  # read in place: no second copy, no transient peak
        if fh.readinto(buf) != nbytes:
            raise SystemExit("llmkit: the input file is short")
        kind = getattr(torch, dtype)
        flat = torch.frombuffer(buf, dtype=kind) if nbytes else torch.empty(0, dtype=kind)
        tensors.append(flat.view(shape))
def build(doc):
    kind, body = next(iter(doc.items()))
    if kind == "tensor":
        return tensors[body]
    if kind == "list":
        return [build(x) for x in body]
    if kind == "tuple":
        return tuple(build(x) for x in body)
    if kind == "dict":
        return {k: build(v) for k, v in body}
    return body
args, kwargs = build(order["args"]), build(order["kwargs"])
# The same warm-up in every run: kernels and buffers torch builds on first use.
_w = torch.ones(8, 8)
float((_w @ _w).exp().amax(-1).log().sum())
del _w
if order["call"]:
    trap = contextlib.nullcontext()
    if order["banned"]:
        trap = trap_banned_calls(order["banned"], files, order["exercise"])
    with trap as caught:
        module = load_module_from_files(files, order["exercise"], order["module"])
        result = getattr(module, order["function"])(*args, **kwargs)
    calls = list(getattr(caught, "calls", []))
    def refuse(value):
        raise TypeError(f"the call returned a {type(value).__name__}, which is not plain data")
    encoder = wire.Encoder(refuse)
    doc = encoder.encode(result)
    with open("output.bin", "wb") as fh:
        sizes = [fh.write(buffer) for buffer in encoder.buffers]
    with open("output.json", "w") as fh:
        json.dump({"value": doc, "sizes": sizes, "banned_calls": calls}, fh)
"""
# Imported before the sandbox's rules apply, in the control and the call alike.
_HARNESS_MODULES = ("torch", "llmkit.bans", "llmkit.impl", "llmkit.sandbox.wire")


class CallMemory(NamedTuple):
    output: Any  # what the call returned, as plain data (tensors, numbers, containers)
    peak_bytes: int  # call_peak_rss - control_peak_rss: memory the call (and its module) added
    call_peak_rss: int  # peak RSS of the process that loaded the module and made the call
    control_peak_rss: int  # peak RSS of the same harness, same inputs, no learner code


def _encode_inputs(value, tensors: list[torch.Tensor], depth: int = 0):
    if depth > 32:
        raise TypeError("inputs nested too deeply")
    if isinstance(value, torch.Tensor):
        tensors.append(as_plain_tensor(value, "input").detach().cpu().contiguous())
        return {"tensor": len(tensors) - 1}
    if type(value) in (list, tuple):
        return {type(value).__name__: [_encode_inputs(v, tensors, depth + 1) for v in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("dict inputs need string keys")
        return {"dict": [[k, _encode_inputs(v, tensors, depth + 1)] for k, v in value.items()]}
    if value is None or type(value) in (bool, int, float, str):
        return {"value": value}
    raise TypeError(f"a {type(value).__name__} cannot be an input of peak_memory_of_call")


# Every allocation of 64 KiB or more is its own mapping, returned to the OS when freed:
# glibc's default threshold moves up as large blocks are freed, which kept freed tiles in
# the heap and made a tiled loop's peak vary by 5-12 MiB from run to run.
_EXACT_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(64 * 2**10)}
_CONTROLS: dict[tuple, int] = {}  # (input layout, jailed) -> the control's peak RSS, once per process


def peak_memory_of_call(
    module_files: Sequence[str],
    function: str,
    args: Sequence[Any] = (),
    kwargs: dict | None = None,
    *,
    exercise: str = "",
    banned: Sequence[str] = (),
    timeout_s: float = 120.0,
) -> CallMemory:
    """Call ``function`` of the module made of ``module_files`` (``impl_files`` in a
    grader: the learner's files, in execution order) on ``args`` and ``kwargs`` in a
    fresh process, and report the peak resident memory it added, as the OS measured
    it. ``args`` and ``kwargs`` hold tensors, numbers, strings and containers of them;
    the call runs with one torch thread and ``banned`` calls trapped, as in a worker.

    Raises :class:`~llmkit.checks.CheckFailure` when the call fails, is killed or sends
    back something that is not plain data. The control run holds no learner code, so
    it is measured once per input layout and reused.
    """
    import json

    from llmkit.failures import BannedCallError, CheckFailure
    from llmkit.sandbox import active, wire
    from llmkit.sandbox.script import run_learner_script

    tensors: list[torch.Tensor] = []
    order = {
        "args": _encode_inputs(list(args), tensors),
        "kwargs": _encode_inputs(dict(kwargs or {}), tensors),
        "function": function,
        "exercise": exercise,
        "module": f"llmkit_submission.memory.{function}",
        "banned": list(banned),
    }
    order["tensors"] = [
        [str(t.dtype).removeprefix("torch."), list(t.shape), t.numel() * t.element_size()] for t in tensors
    ]
    raw = b"".join(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"" for t in tensors)

    def run(call: bool):
        inputs = {"order.json": json.dumps({**order, "call": call}).encode(), "inputs.bin": raw}
        return run_learner_script(
            _HARNESS,
            [],
            module_files=list(module_files) if call else [],
            inputs=inputs,
            preload=_HARNESS_MODULES,
            timeout_s=timeout_s,
            outputs=("output.json", "output.bin") if call else (),
            env=_EXACT_MALLOC,
        )

    layout = (json.dumps(order["tensors"]), active() is not None and active().jail.kind)
    if layout not in _CONTROLS:
        control = run(call=False)
        if control.returncode != 0 or control.peak_rss_bytes <= 0:
            raise RuntimeError(f"the memory harness failed without learner code: {control.stderr[-1500:]}")
        _CONTROLS[layout] = control.peak_rss_bytes
    control_rss = _CONTROLS[layout]
    got = run(call=True)
    if got.returncode != 0 or got.timed_out:
        why = "ran past the time limit" if got.timed_out else f"exited with code {got.returncode}"
        raise CheckFailure(
            f"{function}() in a fresh process (to measure its memory) {why}:\n{got.stderr[-1500:]}"
        )
    try:
        meta = json.loads(got.files["output.json"])
        data, sizes = got.files.get("output.bin", b""), meta["sizes"]
        if not (isinstance(sizes, list) and all(type(n) is int and n >= 0 for n in sizes)):
            raise wire.WireError("bad buffer sizes")
        if sum(sizes) != len(data):
            raise wire.WireError("the buffers do not add up")
        buffers, start = [], 0
        for n in sizes:
            buffers.append(data[start : start + n])
            start += n

        def no_refs(doc):
            raise wire.WireError("a reference is not plain data")

        output = wire.Decoder(buffers, no_refs).decode(meta["value"])
        calls = meta.get("banned_calls", [])
        if not (isinstance(calls, list) and all(isinstance(c, str) for c in calls)):
            raise wire.WireError("bad banned_calls")
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, wire.WireError) as exc:
        raise CheckFailure(
            f"{function}() in a fresh process (to measure its memory) sent back no readable result ({exc})"
        ) from None
    if calls:
        raise BannedCallError(f"exercise {exercise} bans calls your code made: {', '.join(calls)[:500]}")
    return CallMemory(output, got.peak_rss_bytes - control_rss, got.peak_rss_bytes, control_rss)
