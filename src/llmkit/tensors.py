"""Learner output as plain tensors: what every check compares, whatever the learner returned."""

from __future__ import annotations

import numpy as np
import torch

from llmkit.failures import CheckFailure


def as_plain_tensor(value, name: str = "output") -> torch.Tensor:
    """Learner output as a plain, detached CPU tensor.

    Tensor subclasses are stripped (their ``__torch_function__`` or ``__eq__``
    cannot influence the comparison); numpy arrays, numpy scalars and Python
    numbers are converted; anything else is a failure naming the type.
    """
    if isinstance(value, torch.Tensor):
        if type(value) not in (torch.Tensor, torch.nn.Parameter):
            raise CheckFailure(
                f"{name}: expected a plain torch.Tensor, got the subclass {type(value).__name__}",
                hint="return ordinary tensors; tensor subclasses are not accepted as results",
            )
        return value.detach().to("cpu", copy=True)
    if isinstance(value, (np.ndarray, np.number, np.bool_)) and value.dtype != object:
        return torch.from_numpy(np.array(value, copy=True))  # a numpy scalar keeps its dtype
    if type(value) in (int, float, bool):
        return torch.tensor(value)
    raise CheckFailure(
        f"{name}: expected a tensor, got {type(value).__name__}",
        hint="return a torch.Tensor (not a list, tuple or None)",
    )


def format_index(flat_index: int, shape: torch.Size) -> str:
    if len(shape) == 0:
        return "()"
    return str(tuple(int(i) for i in np.unravel_index(flat_index, tuple(shape))))
