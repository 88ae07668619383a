"""Remote handles: what graders hold in place of the learner's objects.

Attribute access, calls, operators, iteration and ``len`` on a :class:`RemoteObject`
go to its worker; plain data (tensors, arrays, numbers, strings, containers) comes
back decoded by :mod:`llmkit.sandbox.wire`, anything else stays in the worker as
another handle. A handle's ``==`` is identity: a learner's ``__eq__`` never decides.
While its worker is deferring (:func:`llmkit.sandbox.pipelined`), the operations whose
answers are objects are queued and give handles at once (see
:meth:`llmkit.sandbox.channel.Worker.deferring`).
"""

from __future__ import annotations

from llmkit.sandbox.launch import SandboxFailure

# A handle's worker is a llmkit.sandbox.channel.Worker; it is not imported here, as
# the channel builds handles (importing it would make a cycle).
Worker = object

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

    def _llmkit_object(self, op: str, *args, doing: str | None = None):
        """An operation whose answer is usually an object: queued while the worker is
        deferring, else sent at once."""
        worker = self._llmkit_worker
        if worker.queue is not None:
            return worker.defer(op, *args)
        return worker.request(op, *args, doing=doing)

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
        doing = f"reading .{name} of {self._llmkit_type}"
        if name.startswith("__"):  # looked up by library code, which expects an answer now
            return self._llmkit_request("getattr", self, name, doing=doing)
        return self._llmkit_object("getattr", self, name, doing=doing)

    def __setattr__(self, name: str, value) -> None:
        self._llmkit_request("setattr", self, name, value, doing=f"setting .{name} of {self._llmkit_type}")

    def __delattr__(self, name: str) -> None:
        self._llmkit_request("delattr", self, name)

    def __call__(self, *args, **kwargs):
        return self._llmkit_object("call", self, list(args), kwargs, doing=f"calling {self._llmkit_type}")

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
        return self._llmkit_object("builtin", "getitem", self, key)

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
    reflected = arity == 2 and name.startswith("r") and name[1:] in _BINARY
    operator_name = name[1:] if reflected else name

    if arity == 1:

        def method(self):
            if self._llmkit_worker.queue is not None:  # the operator, run in the worker
                return self._llmkit_worker.defer("operator", operator_name, self)
            return self._llmkit_request("special", self, dunder, [], doing=f"{dunder} of {self._llmkit_type}")

    else:

        def method(self, other):
            if self._llmkit_worker.queue is not None:  # the whole protocol, reflected method included
                operands = (other, self) if reflected else (self, other)
                return self._llmkit_worker.defer("operator", operator_name, *operands)
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
