"""Shared checks for public tests and hidden graders.

Every failure raises :class:`CheckFailure` with a message written for the
learner: what was expected, what was seen, the tolerance, and a hint. The
pytest plugin prints that message without an engine traceback.

The comparisons live here; graders import the rest from here too, re-exported from
modules of their own: :mod:`llmkit.failures` (the failure, no torch),
:mod:`llmkit.tensors` (learner output as plain tensors), :mod:`llmkit.poison`
(poisoned output buffers) and :mod:`llmkit.gradients` (drives sandboxed code).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from llmkit.failures import CheckFailure
from llmkit.gradients import Gradients, attributes, value_and_grad  # noqa: F401
from llmkit.misconceptions import Suspects
from llmkit.poison import POISON, assert_all_written, is_poisoned, poison, poisoned_allocations  # noqa: F401
from llmkit.tensors import as_plain_tensor, format_index

# (rtol, atol) per dtype; DESIGN.md's table. Stated in every failure message.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-10, 1e-10),
    torch.float32: (1e-5, 1e-5),
    torch.float16: (1e-3, 1e-3),
    torch.bfloat16: (1e-2, 1e-2),
}


def tolerance_for(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES.get(dtype, (0.0, 0.0))


def assert_close(
    actual,
    expected,
    *,
    name: str = "output",
    rtol: float | None = None,
    atol: float | None = None,
    check_dtype: bool = True,
    hint: str | None = None,
    suspects: Suspects | None = None,
) -> None:
    """``actual`` equals ``expected`` within the tolerance of ``expected``'s dtype.

    Shape, dtype, NaN/inf placement and values are checked, in that order. On failure,
    ``suspects`` (``MISCONCEPTIONS.on(...)`` of the exercise's support module) are
    held to the same check: the first that passes it names the likely mistake.
    """
    expected_t = as_plain_tensor(expected, "expected")
    actual_t = as_plain_tensor(actual, name)
    tol = (rtol, atol)
    problem = _close_problem(actual_t, expected_t, name, tol, check_dtype)
    if problem is None:
        return
    message, default_hint = problem
    if suspects is not None:
        diagnosis = suspects.first_match(
            lambda value: _close_problem(actual_t, as_plain_tensor(value), name, tol, check_dtype) is None
        )
        message = f"{diagnosis}\n{message}" if diagnosis else message
    raise CheckFailure(message, hint=hint or default_hint)


def _close_problem(actual_t, expected_t, name, tol, check_dtype) -> tuple[str, str | None] | None:
    """What fails ``assert_close(actual_t, expected_t)``, with its default hint; None if nothing."""
    if actual_t.shape != expected_t.shape:
        return f"{name}: wrong shape: expected {tuple(expected_t.shape)}, got {tuple(actual_t.shape)}", None
    if check_dtype and actual_t.dtype != expected_t.dtype:
        return (
            f"{name}: wrong dtype: expected {expected_t.dtype}, got {actual_t.dtype}",
            "keep the dtype of the inputs; avoid mixing in float64/float32 constants",
        )
    default_rtol, default_atol = tolerance_for(expected_t.dtype)
    rtol = default_rtol if tol[0] is None else tol[0]
    atol = default_atol if tol[1] is None else tol[1]
    a, e = actual_t, expected_t
    if a.is_floating_point() or e.is_floating_point():
        a, e = a.to(torch.float64), e.to(torch.float64)
        nan_mismatch = torch.isnan(a) != torch.isnan(e)
        if nan_mismatch.any():
            idx = int(nan_mismatch.flatten().nonzero()[0])
            n = int(nan_mismatch.sum())
            return (
                f"{name}: {n} of {a.numel()} elements are NaN where they should not be "
                f"(or the other way round); first at index {format_index(idx, a.shape)}: "
                f"expected {e.flatten()[idx].item():.6g}, got {a.flatten()[idx].item():.6g}",
                "NaN usually comes from exp() overflow, 0/0 or -inf - -inf",
            )
        both_nan = torch.isnan(a) & torch.isnan(e)
        a = torch.where(both_nan, torch.zeros_like(a), a)
        e = torch.where(both_nan, torch.zeros_like(e), e)
        same_inf = torch.isinf(e) & (a == e)
        diff = torch.where(same_inf, torch.zeros_like(a), (a - e).abs())
        diff = torch.nan_to_num(diff, nan=float("inf"))
        allowed = atol + rtol * torch.where(torch.isinf(e), torch.zeros_like(e), e.abs())
        bad = diff > allowed
        excess = diff - allowed
    else:
        bad = a != e
        diff = excess = bad.to(torch.float64)
    if not bad.any():
        return None
    worst = int(excess.flatten().argmax())
    return (
        f"{name}: {int(bad.sum())} of {a.numel()} elements differ "
        f"(dtype {expected_t.dtype}, rtol={rtol:g}, atol={atol:g}). "
        f"Worst at index {format_index(worst, a.shape)}: expected "
        f"{e.flatten()[worst].item():.8g}, got {a.flatten()[worst].item():.8g} "
        f"(|diff| {diff.flatten()[worst].item():.3g})",
        None,
    )


def check_equal(actual, expected, *, name: str = "output", hint: str | None = None, suspects=None) -> None:
    """``actual == expected`` for plain values (lists, strings, numbers, dicts). On failure,
    ``suspects`` (as in :func:`assert_close`) name the likely mistake."""
    if actual == expected:
        return
    message = f"{name}:\n  got      {_clip(repr(actual))}\n  expected {_clip(repr(expected))}"
    if suspects is not None:
        diagnosis = suspects.first_match(lambda value: value == actual)
        message = f"{diagnosis}\n{message}" if diagnosis else message
    raise CheckFailure(message, hint=hint)


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[: limit - 20]} ... ({len(text)} characters)"


def assert_finite(value, *, name: str = "output", hint: str | None = None) -> None:
    t = as_plain_tensor(value, name)
    if t.is_floating_point() and not torch.isfinite(t).all():
        bad = (~torch.isfinite(t)).flatten().nonzero()
        idx = int(bad[0])
        raise CheckFailure(
            f"{name}: {len(bad)} of {t.numel()} elements are NaN or inf; first at index "
            f"{format_index(idx, t.shape)} = {t.flatten()[idx].item()}",
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


# --- inputs left alone -------------------------------------------------------


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
