"""The wire format between the grader and a sandbox worker: JSON plus raw buffers.

A message is one frame: a header (JSON length, buffer count, total buffer bytes),
the JSON document, a table of buffer lengths, then the buffers back to back. Values are
tagged JSON:

* ``null``/bool/int/float/str are themselves (floats may be NaN or infinite);
* ``{"list": [...]}``, ``{"tuple": [...]}``, ``{"dict": [[k, v], ...]}`` (also for
  ``Counter``, ``defaultdict`` and ``OrderedDict``: they arrive as a plain ``dict``),
  ``{"bytes": i}`` (or ``{"hex": "..."}`` when short), ``{"tensor": {dtype, shape, buffer, requires_grad}}``,
  ``{"ndarray": {dtype, shape, buffer}}``, ``{"npscalar": {dtype, buffer}}``,
  ``{"dtype": "float32"}``, ``{"slice": [a, b, c]}``, ``{"ellipsis": 1}``,
  ``{"notimplemented": 1}``, ``{"ref": id, "type": name, "callable": bool}``
  (an object that stays in the worker), ``{"cached": id}`` (an input the worker
  already holds);
* ``{"pickle": i}`` — grader to worker only, for inputs such as a grader's
  ``nn.Module``. :func:`decode` refuses it unless ``allow_pickle`` is set, and the
  grader never sets it: nothing the worker sends is unpickled.

Decoding builds fresh plain objects (``torch.Tensor``, ``numpy.ndarray``, ``dict``,
...) from the bytes, so a tensor subclass or an ``__eq__`` that lies does not
survive the trip.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import struct
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable

import numpy as np
import torch

HEADER = struct.Struct("<IIQ")  # JSON bytes, buffer count, buffer bytes
MAX_JSON_BYTES = 64 * 2**20
MAX_BUFFER_BYTES = 2**30  # per message: a bigger answer is a memory bomb aimed at the grader
MAX_DEPTH = 64
_PLAIN_DICTS = (dict, Counter, defaultdict, OrderedDict)  # exact types: their items() are the stdlib's

_TORCH_DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (
        torch.float64,
        torch.float32,
        torch.float16,
        torch.bfloat16,
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
        torch.bool,
        torch.complex64,
        torch.complex128,
    )
}


class WireError(Exception):
    """A message that does not follow the wire format (garbage from a worker)."""


class Encoder:
    """Turns a value into (JSON-able document, buffers).

    ``make_ref(obj)`` is called for anything that is not plain data; it returns the
    reference document, or raises ``TypeError`` if the value may not travel.
    ``allow_pickle`` lets otherwise unsupported objects travel pickled (grader side).
    """

    def __init__(
        self,
        make_ref: Callable[[object], dict],
        *,
        allow_pickle: bool = False,
        cached: Callable[[object], int | None] | None = None,
    ):
        self.make_ref = make_ref
        self.allow_pickle = allow_pickle
        self.cached = cached  # id of a tensor the other side already holds, or None
        self.buffers: list[bytes | memoryview] = []
        self.tensors: list[torch.Tensor] = []  # every tensor sent, in order (see Decoder.tensors)
        self.storages: dict[tuple, int] = {}  # (data_ptr, nbytes, device) -> buffer index
        # buffer index -> (the tensor sent, whether a compact copy of it travelled)
        self.storage_owners: dict[int, tuple[torch.Tensor, bool]] = {}

    def _buffer(self, data) -> int:
        self.buffers.append(data)
        return len(self.buffers) - 1

    def encode(self, value, depth: int = 0):
        if depth > MAX_DEPTH:
            raise TypeError(f"a value nested more than {MAX_DEPTH} levels deep cannot be sent")
        kind = type(value)
        if value is None or kind in (bool, int, str):
            return value
        if kind is float:
            return value if math.isfinite(value) else {"float": repr(value)}
        if isinstance(value, torch.Tensor):  # subclasses travel as plain data: their overrides stay here
            self.tensors.append(value)
            rid = self.cached(value) if self.cached else None
            return {"cached": rid} if rid is not None else self._tensor(value)
        if isinstance(value, np.ndarray) and kind is np.ndarray:
            return self._ndarray(value)
        if isinstance(value, np.generic) and kind.__module__ == "numpy":
            return {"npscalar": {"dtype": value.dtype.str, "buffer": self._buffer(value.tobytes())}}
        if kind is bytes:
            return {"hex": value.hex()} if len(value) <= 64 else {"bytes": self._buffer(value)}
        if kind is list:
            return {"list": [self.encode(v, depth + 1) for v in value]}
        if kind is tuple:
            return {"tuple": [self.encode(v, depth + 1) for v in value]}
        if kind in _PLAIN_DICTS or kind.__name__ == "OrderedDict" and isinstance(value, dict):
            pairs = value.items()
            return {"dict": [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in pairs]}
        if kind is torch.dtype:
            return {"dtype": str(value).removeprefix("torch.")}
        if kind is slice:
            return {"slice": [self.encode(v, depth + 1) for v in (value.start, value.stop, value.step)]}
        if value is Ellipsis:
            return {"ellipsis": 1}
        if value is NotImplemented:
            return {"notimplemented": 1}
        try:
            return self.make_ref(value)
        except TypeError:
            if not self.allow_pickle:
                raise
        return {"pickle": self._buffer(pickle.dumps(value))}

    def _tensor(self, t: torch.Tensor) -> dict:
        """A tensor travels as its storage plus its view (shape, strides, offset), so
        views of one buffer stay views of one buffer on the other side (guard regions,
        ``out=`` arguments, transposed layouts). A small view of a much larger storage
        travels as a compact copy instead."""
        name = str(t.dtype).removeprefix("torch.")
        if name not in _TORCH_DTYPES:
            raise TypeError(f"tensors of dtype {t.dtype} cannot be sent")
        data = t.detach()
        storage = data.untyped_storage()
        view_bytes = data.numel() * data.element_size()
        compact = storage.nbytes() > 4 * view_bytes + (1 << 20)
        if compact:
            data = data.contiguous().clone()
            storage = data.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes(), str(data.device))
        index = self.storages.get(key)
        if index is None:
            raw = torch.empty(0, dtype=torch.uint8, device=data.device).set_(storage)
            raw = raw.cpu() if raw.device.type != "cpu" else raw
            index = self._buffer(memoryview(raw.numpy()).cast("B") if raw.numel() else b"")
            self.storages[key] = index
            self.storage_owners[index] = (t, compact)
        return {
            "tensor": {
                "dtype": name,
                "shape": list(data.shape),
                "stride": list(data.stride()),
                "offset": data.storage_offset(),
                "storage": index,
                "requires_grad": bool(t.requires_grad),
                "device": data.device.type,
            }
        }

    def _ndarray(self, a: np.ndarray) -> dict:
        if a.dtype.hasobject or a.dtype.fields is not None:
            raise TypeError(f"numpy arrays of dtype {a.dtype} cannot be sent")
        data = np.ascontiguousarray(a)
        buffer = self._buffer(data.tobytes())
        return {"ndarray": {"dtype": data.dtype.str, "shape": list(a.shape), "buffer": buffer}}


def _dtype_of(name) -> torch.dtype:
    if not isinstance(name, str) or name not in _TORCH_DTYPES:
        raise WireError(f"unknown tensor dtype {name!r}")
    return _TORCH_DTYPES[name]


def _shape_of(shape) -> list[int]:
    if not isinstance(shape, list) or not all(type(d) is int and 0 <= d for d in shape):
        raise WireError(f"bad shape {shape!r}")
    return shape


class Decoder:
    """Builds fresh plain values from (document, buffers); ``resolve_ref(doc)`` turns a
    reference document into the local object (worker) or a proxy (grader)."""

    def __init__(self, buffers: list[bytes], resolve_ref: Callable[[dict], object], *, allow_pickle=False):
        self.buffers = buffers
        self.resolve_ref = resolve_ref
        self.allow_pickle = allow_pickle
        # Every tensor received, in order: the same order as Encoder.tensors on the other
        # side, so an index names a tensor on both sides (used to copy back in-place edits).
        self.tensors: list[torch.Tensor] = []
        self.storages: dict[int, torch.Tensor] = {}  # buffer index -> uint8 tensor over its bytes
        self.sources: list[tuple[str, int]] = []  # per tensor: ("storage", buffer index) or ("hold", id)

    def _buffer(self, index) -> bytes:
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise WireError(f"bad buffer index {index!r}")
        return self.buffers[index]

    def decode(self, doc, depth: int = 0):
        if depth > MAX_DEPTH:
            raise WireError("value nested too deeply")
        if doc is None or type(doc) in (bool, int, float, str):
            return doc
        if type(doc) is list:
            raise WireError("untagged list")
        if type(doc) is not dict or len(doc) == 0:
            raise WireError(f"bad value {str(doc)[:80]!r}")
        tag = next(iter(doc))
        body = doc[tag]
        if tag in ("list", "tuple"):
            if type(body) is not list:
                raise WireError(f"bad {tag}")
            items = [self.decode(v, depth + 1) for v in body]
            return items if tag == "list" else tuple(items)
        if tag == "dict":
            if type(body) is not list or not all(type(p) is list and len(p) == 2 for p in body):
                raise WireError("bad dict")
            out = {}
            for k, v in body:
                key = self.decode(k, depth + 1)
                try:
                    out[key] = self.decode(v, depth + 1)
                except TypeError:
                    raise WireError("unhashable dict key") from None
            return out
        if tag == "float":
            if body not in ("nan", "inf", "-inf"):
                raise WireError(f"bad float {body!r}")
            return float(body)
        if tag == "bytes":
            return bytes(self._buffer(body))
        if tag == "hex":
            try:
                return bytes.fromhex(body)
            except (TypeError, ValueError):
                raise WireError("bad hex bytes") from None
        if tag == "tensor":
            t = self._tensor(body)
            self.tensors.append(t)
            self.sources.append(("storage", body["storage"]))
            return t
        if tag == "ndarray":
            return self._ndarray(body)
        if tag == "npscalar":
            dtype = np.dtype(str(body.get("dtype")))
            if dtype.hasobject:
                raise WireError("object scalars are not data")
            raw = self._buffer(body.get("buffer"))
            if len(raw) != dtype.itemsize:
                raise WireError("bad numpy scalar")
            return np.frombuffer(raw, dtype=dtype)[0]
        if tag == "dtype":
            return _dtype_of(body)
        if tag == "slice":
            if type(body) is not list or len(body) != 3:
                raise WireError("bad slice")
            return slice(*(self.decode(v, depth + 1) for v in body))
        if tag == "ellipsis":
            return Ellipsis
        if tag == "notimplemented":
            return NotImplemented
        if tag in ("ref", "cached"):
            obj = self.resolve_ref(doc)
            if tag == "cached" and isinstance(obj, torch.Tensor):
                self.tensors.append(obj)
                self.sources.append(("hold", body))
            return obj
        if tag == "pickle" and self.allow_pickle:
            return pickle.loads(self._buffer(body))
        raise WireError(f"unknown tag {tag!r}")

    def storage(self, index) -> torch.Tensor:
        """The bytes of buffer ``index`` as one uint8 tensor, shared by every view of it."""
        if index not in self.storages:
            raw = self._buffer(index)
            empty = torch.empty(0, dtype=torch.uint8)
            self.storages[index] = torch.frombuffer(bytearray(raw), dtype=torch.uint8) if len(raw) else empty
        return self.storages[index]

    def _tensor(self, body) -> torch.Tensor:
        if type(body) is not dict:
            raise WireError("bad tensor")
        dtype, shape = _dtype_of(body.get("dtype")), _shape_of(body.get("shape"))
        stride, offset = body.get("stride"), body.get("offset")
        if not (isinstance(stride, list) and len(stride) == len(shape)) or not all(
            type(x) is int and x >= 0 for x in [*stride, offset]
        ):
            raise WireError(f"bad strides {stride!r} or offset {offset!r}")
        raw = self.storage(body.get("storage"))
        itemsize = torch.empty((), dtype=dtype).element_size()
        extent = offset + sum((n - 1) * s for n, s in zip(shape, stride)) + 1 if math.prod(shape) else 0
        if extent * itemsize > raw.numel() or raw.numel() % itemsize:
            raise WireError(
                f"a tensor view reaches past its storage ({extent} elements, {raw.numel()} bytes)"
            )
        t = torch.empty(0, dtype=dtype).set_(raw.untyped_storage(), offset, shape, stride)
        device = body.get("device", "cpu")
        if device == "cuda" and torch.cuda.is_available():
            t = t.cuda()  # one copy per tensor: views of one CUDA storage become separate tensors
        if body.get("requires_grad") is True and (t.is_floating_point() or t.is_complex()):
            t.requires_grad_(True)
        return t

    def _ndarray(self, body) -> np.ndarray:
        if type(body) is not dict:
            raise WireError("bad array")
        try:
            dtype = np.dtype(str(body.get("dtype")))
        except TypeError:
            raise WireError("bad array dtype") from None
        if dtype.hasobject or dtype.fields is not None:
            raise WireError("object arrays are not data")
        shape = _shape_of(body.get("shape"))
        raw = self._buffer(body.get("buffer"))
        if len(raw) != math.prod(shape) * dtype.itemsize:
            raise WireError("array size does not match its shape")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


# --- framing -------------------------------------------------------------------

COALESCE_BYTES = 1 << 16  # smaller buffers are joined into one write


def write_message(fd: int, doc, buffers) -> None:
    """One frame: header (JSON length, buffer count, buffer bytes), JSON, the buffer
    lengths as one table, then the buffers back to back."""
    text = json.dumps(doc, allow_nan=False).encode()
    sizes = [len(memoryview(b).cast("B")) if not isinstance(b, bytes) else len(b) for b in buffers]
    head = HEADER.pack(len(text), len(buffers), sum(sizes)) + text + struct.pack(f"<{len(sizes)}Q", *sizes)
    pending, pending_size = [head], len(head)
    for buf, size in zip(buffers, sizes):
        if size >= COALESCE_BYTES:
            _write_all(fd, b"".join(pending))
            pending, pending_size = [], 0
            _write_all(fd, buf)
        else:
            pending.append(bytes(buf))
            pending_size += size
    if pending:
        _write_all(fd, b"".join(pending))


def _write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exactly(fd: int, n: int, reader: Callable[[int, int], bytes] | None = None) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        chunk = (reader or os.read)(fd, min(n - got, 1 << 22))
        if not chunk:
            raise EOFError("the other side closed the channel")
        view[got : got + len(chunk)] = chunk
        got += len(chunk)
    return buf


def read_message(
    fd: int, reader: Callable[[int, int], bytes] | None = None
) -> tuple[object, list[memoryview]]:
    text_len, count, total = HEADER.unpack(read_exactly(fd, HEADER.size, reader))
    if text_len > MAX_JSON_BYTES or count > 4_000_000 or total > MAX_BUFFER_BYTES:
        raise WireError(f"message too large ({text_len} bytes of JSON, {count} buffers, {total} bytes)")
    body = memoryview(read_exactly(fd, text_len + 8 * count + total, reader))  # the rest, in one read
    try:
        doc = json.loads(body[:text_len].tobytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"not JSON: {exc}") from None
    sizes = struct.unpack(f"<{count}Q", body[text_len : text_len + 8 * count]) if count else ()
    if sum(sizes) != total:
        raise WireError("buffer sizes do not add up")
    buffers, start = [], text_len + 8 * count
    for size in sizes:
        buffers.append(body[start : start + size])
        start += size
    return doc, buffers
