"""Peak tensor memory of one call, measured from the tensors it actually creates.

:func:`measure_memory` runs ``fn(*inputs, **kwargs)`` under a
``TorchDispatchMode`` that sees every aten operation. Each storage an operation
returns that did not exist before the call is counted as an allocation; a
``weakref.finalize`` on the storage subtracts it again the moment torch frees it.
Views share their base's storage and are not counted twice; in-place ops and
``out=`` buffers count once; the caller's inputs (and anything else that existed
before the call) count zero. The peak is the most bytes held at once by storages
the call created, outputs included.

Like :func:`llmkit.checks.value_and_grad`, it takes the callable itself, not a
lambda around it, and returns plain data (numbers, strings and plain tensors), so
the same call can run wherever learner code runs.

NumPy buffers are not torch storages; with ``trace_python=True`` the peak of
``tracemalloc`` (which NumPy reports its buffers to) is returned as
``python_peak_bytes``. Not seen: scratch memory *inside* a single aten kernel
(e.g. a fused library kernel's workspace), and work done on other threads.
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
    """Run ``fn(*inputs, **kwargs)`` once and report the tensor memory it allocated.

    Pass the learner's callable itself. Tensors among ``inputs`` and ``kwargs``
    (and any tensor that existed before the call) are not counted. The call runs
    with one torch thread (the count is restored afterwards): the per-op
    bookkeeping is Python, and idle OpenMP workers spinning against it made a
    busy 2-core machine up to 50x slower.
    """
    kwargs = kwargs or {}
    from llmkit.sandbox import worker_of

    worker = worker_of(fn)
    if worker is not None:  # measured where the learner's code runs
        got = worker.request("measure_memory", fn, list(inputs), kwargs, trace_python, doing="measure_memory")
        if not (isinstance(got, tuple) and len(got) == len(MemoryUse._fields)):
            raise ValueError("measure_memory: the sandboxed worker sent back something else")
        return MemoryUse(*got)
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
