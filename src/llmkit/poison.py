"""Poisoned output buffers: an element a kernel never writes is NaN (or an extreme integer),
so :func:`llmkit.checks.assert_close` or :func:`assert_all_written` reports it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from llmkit.failures import CheckFailure
from llmkit.tensors import as_plain_tensor, format_index

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
            f"first at index {format_index(idx, t.shape)}",
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
