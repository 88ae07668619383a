"""A bounds check for Triton's interpreter (``TRITON_INTERPRET=1``): every ``tl.load`` and
``tl.store`` address a kernel touches with its mask on must be an element of one of the
launch's tensor arguments. The idea is triton-viz's sanitizer; this is our own, smaller one.

Triton's interpreter reads and writes raw memory and does not fault on a bad pointer,
and a GPU often does not either, so a kernel whose last tile loads past the tensor can
produce right answers (its scores are masked to -inf afterwards) while reading memory
it does not own. Here such an access is dropped (the load gets ``other``, the store
writes nothing) and remembered; when the launch ends, :class:`OutOfBoundsAccess` names
each offending tensor with the first bad element and the program that touched it.

"Element of a tensor" is exact for strided views: a view with padded rows (row stride
D + 8) does not own the padding, so a load of column D is out of bounds here even though
the allocation holds it.

:func:`install` patches the interpreter once per process; importing this module installs
it. A sandbox worker imports it before learner code runs (the catalog's ``preload``), and
exercise 7.2's support module imports it in the test process. On a GPU nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class OutOfBoundsAccess(Exception):
    """A kernel launch loaded or stored outside its tensor arguments. The message is for
    the learner; :func:`parse_report` reads back the (op, tensor) pairs."""


@dataclass(frozen=True)
class _Tensor:
    name: str
    start: int  # address of the first element
    itemsize: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in elements

    def contains(self, addresses: np.ndarray) -> np.ndarray:
        offset = addresses - self.start
        ok = (offset >= 0) & (offset % self.itemsize == 0)
        rest = offset // self.itemsize
        for n, s in self._dims():
            index = rest // s
            ok &= index < n
            rest = rest - index * s
        return ok & (rest == 0)

    def _dims(self):
        """(size, stride) of the dimensions that move, outermost first."""
        return sorted(
            ((n, s) for n, s in zip(self.shape, self.strides) if n > 1 and s > 0), key=lambda d: -d[1]
        )

    def describe(self, address: int) -> str:
        offset = address - self.start
        if offset < 0:
            return f"{-offset} bytes before {self.name}'s first element"
        rest, index = offset // self.itemsize, {}
        for _, s in self._dims():
            index[s] = rest // s
            rest -= index[s] * s
        at = [index.get(s, 0) if n > 1 and s > 0 else 0 for n, s in zip(self.shape, self.strides)]
        spare = f" + {rest} elements" if rest else ""
        return f"{self.name}[{', '.join(map(str, at))}]{spare} ({self.name} has shape {self.shape})"


@dataclass
class _Finding:
    count: int
    first: str
    program: tuple[int, int, int]


@dataclass
class _Launch:
    kernel: str
    tensors: list[_Tensor] = field(default_factory=list)
    findings: dict[tuple[str, str], _Finding] = field(default_factory=dict)


_launch: _Launch | None = None  # the launch in progress (the interpreter runs one at a time)
_installed = False


def install() -> bool:
    """Patch Triton's interpreter (idempotent). False when triton is not installed."""
    global _installed
    if _installed:
        return True
    try:
        from triton.runtime import interpreter
    except ImportError:
        return False

    init_args = interpreter.GridExecutor._init_args_hst
    call = interpreter.GridExecutor.__call__
    masked_load = interpreter.InterpreterBuilder.create_masked_load
    masked_store = interpreter.InterpreterBuilder.create_masked_store

    def _init_args_hst(self, args_dev, kwargs):
        args_hst, kwargs_hst = init_args(self, args_dev, kwargs)
        if _launch is not None:
            named = [*zip(self.arg_names, args_hst), *kwargs_hst.items()]
            _launch.tensors = [_tensor(name, arg) for name, arg in named if hasattr(arg, "data_ptr")]
        return args_hst, kwargs_hst

    def __call__(self, *args, **kwargs):
        global _launch
        outer, _launch = _launch, _Launch(getattr(self.fn, "__name__", "kernel"))
        try:
            result = call(self, *args, **kwargs)
            if _launch.findings:
                raise OutOfBoundsAccess(_report(_launch))
            return result
        finally:
            _launch = outer

    def create_masked_load(self, ptrs, mask, other, *rest):
        return masked_load(self, ptrs, _checked(self, "load", ptrs, mask, interpreter), other, *rest)

    def create_masked_store(self, ptrs, value, mask, *rest):
        return masked_store(self, ptrs, value, _checked(self, "store", ptrs, mask, interpreter), *rest)

    interpreter.GridExecutor._init_args_hst = _init_args_hst
    interpreter.GridExecutor.__call__ = __call__
    interpreter.InterpreterBuilder.create_masked_load = create_masked_load
    interpreter.InterpreterBuilder.create_masked_store = create_masked_store
    _installed = True
    return True


def _tensor(name: str, t) -> _Tensor:
    return _Tensor(name, int(t.data_ptr()), t.element_size(), tuple(t.shape), tuple(t.stride()))


def _checked(builder, op: str, ptrs, mask, interpreter):
    """``mask`` with the out-of-bounds lanes turned off (and remembered)."""
    if _launch is None or not _launch.tensors:
        return mask
    addresses = ptrs.data.astype(np.int64)
    on = np.broadcast_to(mask.data, addresses.shape)
    inside = np.zeros(addresses.shape, dtype=bool)
    for t in _launch.tensors:
        inside |= t.contains(addresses)
    bad = on & ~inside
    if not bad.any():
        return mask
    address = int(addresses[bad][0])
    owner = _nearest(_launch.tensors, address)
    key = (op, owner.name)
    if key in _launch.findings:
        _launch.findings[key].count += int(bad.sum())
    else:
        program = tuple(int(i) for i in builder.grid_idx)
        _launch.findings[key] = _Finding(int(bad.sum()), owner.describe(address), program)
    return interpreter.TensorHandle(on & inside, mask.dtype)


def _nearest(tensors: list[_Tensor], address: int) -> _Tensor:
    """The tensor a stray address most likely belongs to: the last one starting at or
    before it, else the first one after it."""
    before = [t for t in tensors if t.start <= address]
    if before:
        return max(before, key=lambda t: t.start)
    return min(tensors, key=lambda t: t.start)


REPORT_LINE = "  - tl.{op} outside {tensor}:"


def _report(launch: _Launch) -> str:
    lines = [f"out-of-bounds memory access in kernel {launch.kernel} (the interpreter's bounds check):"]
    for (op, tensor), found in launch.findings.items():
        lines.append(
            REPORT_LINE.format(op=op, tensor=tensor)
            + f" {found.count} address(es); the first is {found.first}, in program {found.program}"
        )
    lines.append(
        "Nothing was read or written there in this run; on a GPU the kernel would touch memory "
        "it does not own. Mask every load and store of a tile that can reach past the tensor."
    )
    return "\n".join(lines)


def parse_report(message: str) -> set[tuple[str, str]]:
    """The (op, tensor) pairs of an :class:`OutOfBoundsAccess` message: ``{("load", "K")}``.
    It works on the message alone, as a sandboxed run returns it."""
    found = set()
    for line in message.splitlines():
        if line.startswith("  - tl."):
            op, _, rest = line[len("  - tl.") :].partition(" outside ")
            found.add((op, rest.split(":", 1)[0]))
    return found


install()
