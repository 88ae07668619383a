"""Shared checks for public tests and hidden graders.

Every failure raises :class:`CheckFailure` with a message written for the
learner: what was expected, what was seen, the tolerance, and a hint. The
pytest plugin prints that message without an engine traceback.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils._pytree import tree_flatten, tree_flatten_with_path, tree_map, tree_unflatten

from llmkit.failures import CheckFailure  # defined apart: the sandbox's launch code needs no checks

# (rtol, atol) per dtype; DESIGN.md's table. Stated in every failure message.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-10, 1e-10),
    torch.float32: (1e-5, 1e-5),
    torch.float16: (1e-3, 1e-3),
    torch.bfloat16: (1e-2, 1e-2),
}


def tolerance_for(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES.get(dtype, (0.0, 0.0))


def as_plain_tensor(value, name: str = "output") -> torch.Tensor:
    """Learner output as a plain, detached CPU tensor.

    Tensor subclasses are stripped (their ``__torch_function__`` or ``__eq__``
    cannot influence the comparison); numpy arrays and Python numbers are
    converted; anything else is a failure naming the type.
    """
    if isinstance(value, torch.Tensor):
        if type(value) not in (torch.Tensor, torch.nn.Parameter):
            raise CheckFailure(
                f"{name}: expected a plain torch.Tensor, got the subclass {type(value).__name__}",
                hint="return ordinary tensors; tensor subclasses are not accepted as results",
            )
        return value.detach().to("cpu", copy=True)
    if isinstance(value, np.ndarray) and value.dtype != object:
        return torch.from_numpy(np.array(value, copy=True))
    if type(value) in (int, float, bool):
        return torch.tensor(value)
    raise CheckFailure(
        f"{name}: expected a tensor, got {type(value).__name__}",
        hint="return a torch.Tensor (not a list, tuple or None)",
    )


def _fmt_index(flat_index: int, shape: torch.Size) -> str:
    if len(shape) == 0:
        return "()"
    return str(tuple(int(i) for i in np.unravel_index(flat_index, tuple(shape))))


def assert_close(
    actual,
    expected,
    *,
    name: str = "output",
    rtol: float | None = None,
    atol: float | None = None,
    check_dtype: bool = True,
    hint: str | None = None,
) -> None:
    """``actual`` equals ``expected`` within the tolerance of ``expected``'s dtype.

    Shape, dtype, NaN/inf placement and values are checked, in that order.
    """
    expected_t = as_plain_tensor(expected, "expected")
    actual_t = as_plain_tensor(actual, name)
    if actual_t.shape != expected_t.shape:
        raise CheckFailure(
            f"{name}: wrong shape: expected {tuple(expected_t.shape)}, got {tuple(actual_t.shape)}",
            hint=hint,
        )
    if check_dtype and actual_t.dtype != expected_t.dtype:
        raise CheckFailure(
            f"{name}: wrong dtype: expected {expected_t.dtype}, got {actual_t.dtype}",
            hint=hint or "keep the dtype of the inputs; avoid mixing in float64/float32 constants",
        )
    default_rtol, default_atol = tolerance_for(expected_t.dtype)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    a = actual_t.to(torch.float64) if actual_t.is_floating_point() else actual_t
    e = expected_t.to(torch.float64) if expected_t.is_floating_point() else expected_t
    if a.is_floating_point() or e.is_floating_point():
        a, e = a.to(torch.float64), e.to(torch.float64)
        nan_mismatch = torch.isnan(a) != torch.isnan(e)
        if nan_mismatch.any():
            idx = int(nan_mismatch.flatten().nonzero()[0])
            n = int(nan_mismatch.sum())
            raise CheckFailure(
                f"{name}: {n} of {a.numel()} elements are NaN where they should not be "
                f"(or the other way round); first at index {_fmt_index(idx, a.shape)}: "
                f"expected {e.flatten()[idx].item():.6g}, got {a.flatten()[idx].item():.6g}",
                hint=hint or "NaN usually comes from exp() overflow, 0/0 or -inf - -inf",
            )
        both_nan = torch.isnan(a) & torch.isnan(e)
        a = torch.where(both_nan, torch.zeros_like(a), a)
        e = torch.where(both_nan, torch.zeros_like(e), e)
        same_inf = torch.isinf(e) & (a == e)
        diff = torch.where(same_inf, torch.zeros_like(a), (a - e).abs())
        diff = torch.nan_to_num(diff, nan=float("inf"))
        allowed = atol + rtol * torch.where(torch.isinf(e), torch.zeros_like(e), e.abs())
        bad = diff > allowed
    else:
        diff = (a != e).to(torch.float64)
        bad = a != e
    if bad.any():
        n_bad = int(bad.sum())
        worst = int((diff - allowed if a.is_floating_point() else diff).flatten().argmax())
        raise CheckFailure(
            f"{name}: {n_bad} of {a.numel()} elements differ "
            f"(dtype {expected_t.dtype}, rtol={rtol:g}, atol={atol:g}). "
            f"Worst at index {_fmt_index(worst, a.shape)}: expected "
            f"{e.flatten()[worst].item():.8g}, got {a.flatten()[worst].item():.8g} "
            f"(|diff| {diff.flatten()[worst].item():.3g})",
            hint=hint,
        )


def assert_finite(value, *, name: str = "output", hint: str | None = None) -> None:
    t = as_plain_tensor(value, name)
    if t.is_floating_point() and not torch.isfinite(t).all():
        bad = (~torch.isfinite(t)).flatten().nonzero()
        idx = int(bad[0])
        raise CheckFailure(
            f"{name}: {len(bad)} of {t.numel()} elements are NaN or inf; first at index "
            f"{_fmt_index(idx, t.shape)} = {t.flatten()[idx].item()}",
            hint=hint,
        )


# --- gradients ---------------------------------------------------------------


def central_difference(f: Callable[[], float], x: np.ndarray | torch.Tensor, eps: float = 1e-6):
    """Numerical gradient of the scalar ``f()`` with respect to ``x`` (edited in place).

    float64 central differences: (f(x + eps) - f(x - eps)) / 2 eps, one element at a time.
    Works for numpy arrays and torch tensors; ``x`` is restored afterwards.
    """
    is_torch = isinstance(x, torch.Tensor)
    if (x.dtype != torch.float64) if is_torch else (x.dtype != np.float64):
        raise TypeError(f"central_difference needs float64 input, got {x.dtype}")
    grad = np.zeros(tuple(x.shape), dtype=np.float64)
    target = x.detach() if is_torch else x  # shares storage; works for any strides
    for idx in np.ndindex(*grad.shape):
        old = float(target[idx])
        target[idx] = old + eps
        plus = float(f())
        target[idx] = old - eps
        minus = float(f())
        target[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def attributes(objects: Sequence[Any], name: str) -> list[Any]:
    """``[getattr(o, name) for o in objects]``; for objects in a sandbox worker, one
    request instead of one per object (a graph of thousands of nodes reads quickly)."""
    from llmkit.sandbox import worker_of

    objects = list(objects)
    worker = worker_of(objects[0]) if objects else None
    if worker is not None and all(worker_of(o) is worker for o in objects):
        got = worker.request("getattrs", objects, name, doing=f"reading .{name} of {len(objects)} objects")
        if not (isinstance(got, list) and len(got) == len(objects)):
            raise CheckFailure(f"reading .{name}: the sandboxed worker sent back something else")
        return got
    return [getattr(o, name) for o in objects]


class Gradients(NamedTuple):
    output: Any  # fn's output, tensors as plain tensors, in its own structure
    inputs: list[Any]  # d(loss)/d(input) for each input, in the input's structure (None: not a tensor)
    params: dict[str, torch.Tensor]  # d(loss)/d(parameter) by name, for the module's trainable parameters


def _differentiable(x) -> bool:
    return isinstance(x, torch.Tensor) and (x.is_floating_point() or x.is_complex())


def value_and_grad(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    weights: Any,
    *,
    kwargs: dict | None = None,
    params_of: torch.nn.Module | None = None,
    hint: str | None = None,
) -> Gradients:
    """``fn(*inputs, **kwargs)`` and the gradients of ``loss = sum((output * weights).sum())``
    with respect to every input tensor and every trainable parameter of ``params_of``
    (by default ``fn`` itself when it is an ``nn.Module``).

    Inputs and outputs may be nested tuples/lists of tensors, e.g. ``[x, (h, c)]`` in
    and ``(h, c)`` out; ``weights`` has the output's structure. Non-tensor inputs
    (a module, a number) are passed through and get ``None`` as their gradient.
    Pass the learner's callable or module itself (not a lambda around it): when it is
    a sandboxed handle, this function drives it from the grader's side, one operation
    at a time (keep the input copies in the worker, call, weight and sum the outputs,
    ``torch.autograd.grad``), and only plain tensors come back. Input tensors are
    copied; the caller's never collect gradients.
    """
    from llmkit.sandbox import worker_of

    worker = worker_of(fn)
    leaves, spec = tree_flatten(list(inputs))
    leaves = [t.detach().clone().requires_grad_(True) if _differentiable(t) else t for t in leaves]
    if worker is not None:
        return _remote_value_and_grad(worker, fn, leaves, spec, weights, kwargs or {}, params_of, hint)
    module = params_of if params_of is not None else (fn if isinstance(fn, torch.nn.Module) else None)
    params = {n: p for n, p in module.named_parameters() if p.requires_grad} if module is not None else {}
    out = fn(*tree_unflatten(leaves, spec), **(kwargs or {}))
    outs, weight_list = _weighted_outputs(out, weights, hint)
    loss = sum((o * w.to(o.dtype)).sum() for o, w in zip(outs, weight_list) if o.requires_grad)
    wrt = [t for t in leaves if _differentiable(t)] + list(params.values())
    grads = iter(torch.autograd.grad(loss, wrt, allow_unused=True))

    def plain_grad(t):
        g = next(grads)
        return as_plain_tensor(torch.zeros_like(t) if g is None else g, "gradient")

    input_grads = [plain_grad(t) if _differentiable(t) else None for t in leaves]
    return Gradients(
        output=tree_map(lambda x: as_plain_tensor(x) if isinstance(x, torch.Tensor) else x, out),
        inputs=tree_unflatten(input_grads, spec),
        params={name: plain_grad(p) for name, p in params.items()},
    )


def _weighted_outputs(out, weights, hint) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The output's tensors and their weights, once the output is known to have the
    weights' structure and to require grad."""
    outs, weight_list = tree_flatten(out)[0], tree_flatten(weights)[0]
    if len(outs) != len(weight_list) or not all(isinstance(o, torch.Tensor) for o in outs):
        raise CheckFailure(
            f"expected an output shaped like {tree_flatten(weights)[1]}, got {type(out).__name__}",
            hint=hint or "check the docstring for what the function returns",
        )
    if not any(o.requires_grad for o in outs):
        raise CheckFailure(
            "the output does not require grad, so no gradient flows back to the inputs",
            hint=hint or "avoid .detach(), .item(), .numpy() or torch.no_grad() inside the function",
        )
    return outs, weight_list


_IS_MODULE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # remote handle -> an nn.Module?


def _remote_value_and_grad(worker, fn, leaves, spec, weights, kwargs, params_of, hint) -> Gradients:
    """:func:`value_and_grad` of a sandboxed ``fn``, driven from here in two round trips
    (three the first time, to ask whether ``fn`` is an ``nn.Module``): keep the input copies
    in the worker as handles, call ``fn`` and keep its output there, list the module's
    parameters, and read the output and the parameters back; then index the output,
    weight and sum it into a loss and run ``torch.autograd.grad`` there, reading the
    gradients back. Only plain data comes back; every check is made here."""
    module = params_of
    if module is None:
        if fn not in _IS_MODULE:  # asked once per handle (fine-tuning calls this on one model often)
            answer = worker.request("builtin", "isinstance", fn, torch.nn.Module, doing="value_and_grad")
            _IS_MODULE[fn] = answer is True
        module = fn if _IS_MODULE[fn] else None
    with worker.deferring():
        kept = [worker.defer("value", t) if _differentiable(t) else t for t in leaves]
        out_h = worker.defer("call", fn, tree_unflatten(kept, spec), kwargs)
        named_h = None
        if module is not None:
            parameters = worker.defer("method", module, "named_parameters", [], {})
            named_h = worker.defer("builtin", "list", parameters)
        got = worker.request("value", [out_h, named_h], doing="value_and_grad (calling your code)")
    if not (isinstance(got, list) and len(got) == 2 and isinstance(got[1], (list, type(None)))):
        raise CheckFailure("value_and_grad: the sandboxed worker sent back something else")
    out, named = got[0], got[1] or []
    if not all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[1], torch.Tensor) for p in named):
        raise CheckFailure("value_and_grad: the sandboxed worker sent back something else for the parameters")
    outs, weight_list = _weighted_outputs(out, weights, hint)
    trainable = [(k, name, p) for k, (name, p) in enumerate(named) if p.requires_grad]
    with worker.deferring():
        terms = []
        for (path, o), w in zip(tree_flatten_with_path(out)[0], weight_list):
            if o.requires_grad:
                o_h = out_h
                for key in path:
                    o_h = key.get(o_h)  # out_h[i][j]..., queued
                terms.append((o_h * w.to(o.dtype)).sum())
        loss = sum(terms)  # as in-process: 0 + t0 + t1 ...
        wrt = [h for h, t in zip(kept, leaves) if _differentiable(t)]
        wrt += [named_h[k][1] for k, _, _ in trainable]
        grads = worker.request(
            "call", torch.autograd.grad, [loss, wrt], {"allow_unused": True}, doing="value_and_grad (grad)"
        )
    if not (
        isinstance(grads, tuple)
        and len(grads) == len(wrt)
        and all(g is None or isinstance(g, torch.Tensor) for g in grads)
    ):
        raise CheckFailure("value_and_grad: the sandboxed worker sent back something else for the gradients")
    grads = iter(grads)

    def plain_grad(t):
        g = next(grads)
        return as_plain_tensor(torch.zeros_like(t) if g is None else g, "gradient")

    input_grads = [plain_grad(t) if _differentiable(t) else None for t in leaves]
    return Gradients(
        output=tree_map(lambda x: as_plain_tensor(x) if isinstance(x, torch.Tensor) else x, out),
        inputs=tree_unflatten(input_grads, spec),
        params={name: plain_grad(p) for _, name, p in trainable},
    )


def check_gradients(
    fn: Callable[..., torch.Tensor],
    inputs: Sequence[torch.Tensor],
    *,
    kwargs: dict | None = None,
    names: Sequence[str] | None = None,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    seed: int = 0,
    hint: str | None = None,
) -> None:
    """Autograd gradients of ``fn(*inputs, **kwargs)`` match float64 central differences.

    The output is reduced with fixed random weights (so every output element
    matters) and the gradient with respect to every input is compared.
    """
    inputs = [t.detach().to(torch.float64).clone() for t in inputs]
    names = list(names or [f"input {i}" for i in range(len(inputs))])
    kwargs = kwargs or {}
    with torch.no_grad():
        out = as_plain_tensor(fn(*inputs, **kwargs), "output")
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    def loss() -> float:
        with torch.no_grad():
            return float((as_plain_tensor(fn(*inputs, **kwargs)).to(torch.float64) * weights).sum())

    grads = value_and_grad(fn, inputs, weights, kwargs=kwargs, hint=hint).inputs
    for t, g, name in zip(inputs, grads, names):
        numeric = torch.from_numpy(central_difference(loss, t, eps))
        assert_close(g, numeric, name=f"gradient w.r.t. {name}", rtol=rtol, atol=atol, hint=hint)


# --- inputs left alone, outputs fully written --------------------------------


@contextlib.contextmanager
def unchanged(*tensors: torch.Tensor, names: Sequence[str] | None = None) -> Iterator[None]:
    """Fail if any of ``tensors`` is modified in place inside the block."""
    names = list(names or [f"input {i}" for i in range(len(tensors))])
    snapshots = [as_plain_tensor(t).clone() for t in tensors]
    yield
    for t, before, name in zip(tensors, snapshots, names):
        after = as_plain_tensor(t)
        if after.shape != before.shape or not _same_values(after, before):
            raise CheckFailure(
                f"{name} was modified in place; the caller's tensors must be left unchanged",
                hint="use out-of-place operations (x = x * s, not x *= s or x.mul_(s)) "
                "on tensors you were given",
            )


def _same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Exact equality where NaN equals NaN (and only NaN)."""
    if a.dtype != b.dtype:
        return False
    if a.is_floating_point() or a.is_complex():
        return torch.equal(torch.isnan(a), torch.isnan(b)) and torch.equal(
            torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0)
        )
    return torch.equal(a, b)


POISON = float("nan")
_EMPTY_FUNCS = ("empty", "empty_like", "empty_strided")


def _poison_value(dtype: torch.dtype):
    """NaN for floats, the extreme integer least likely to be written; None for bool."""
    if dtype.is_floating_point or dtype.is_complex:
        return POISON
    if dtype == torch.bool:
        return None  # no spare value to poison with
    info = torch.iinfo(dtype)
    return info.max if info.min == 0 else info.min


def poison(tensor: torch.Tensor) -> torch.Tensor:
    """Fill an output buffer with a value a correct kernel overwrites everywhere."""
    value = _poison_value(tensor.dtype)
    if value is not None:
        with torch.no_grad():
            tensor.fill_(value)
    return tensor


def is_poisoned(tensor: torch.Tensor) -> bool:
    """Whether every element still holds the poison value (an untouched output buffer)."""
    value = _poison_value(tensor.dtype)
    if value is None or tensor.numel() == 0:
        return False
    t = tensor.detach()
    return bool(torch.isnan(t).all()) if value is POISON else bool((t == value).all())


def assert_all_written(out: torch.Tensor, *, name: str = "output") -> None:
    """Every element of a poisoned output buffer was overwritten."""
    t = as_plain_tensor(out, name)
    value = _poison_value(t.dtype)
    if value is None:
        raise TypeError("assert_all_written cannot check bool buffers (no poison value)")
    left = torch.isnan(t) if value is POISON else t == value
    if left.any():
        idx = int(left.flatten().nonzero()[0])
        raise CheckFailure(
            f"{name}: {int(left.sum())} of {t.numel()} elements were never written; "
            f"first at index {_fmt_index(idx, t.shape)}",
            hint="check the bounds of your loops or the masks of your stores",
        )


@contextlib.contextmanager
def poisoned_allocations() -> Iterator[None]:
    """Inside the block, torch.empty*/Tensor.new_empty return NaN-filled tensors.

    Code that allocates with ``empty`` and forgets to write some elements then
    returns NaN there, which :func:`assert_close` reports.
    """
    originals = {name: getattr(torch, name) for name in _EMPTY_FUNCS}
    original_new_empty = torch.Tensor.new_empty
    had_own_new_empty = "new_empty" in torch.Tensor.__dict__

    def wrap(fn):
        def poisoned(*args, **kwargs):
            return poison(fn(*args, **kwargs))

        return poisoned

    try:
        for name, fn in originals.items():
            setattr(torch, name, wrap(fn))
        torch.Tensor.new_empty = wrap(original_new_empty)
        yield
    finally:
        for name, fn in originals.items():
            setattr(torch, name, fn)
        if had_own_new_empty:
            torch.Tensor.new_empty = original_new_empty
        else:
            del torch.Tensor.new_empty
