"""Gradients of learner code, and attributes of its objects: in-process, or driven from the
grader's side when the code runs in a sandbox worker (a remote handle)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch.utils._pytree import tree_flatten, tree_flatten_with_path, tree_map, tree_unflatten

from llmkit.failures import CheckFailure
from llmkit.sandbox import worker_of
from llmkit.tensors import as_plain_tensor


def attributes(objects: Sequence[Any], name: str) -> list[Any]:
    """``[getattr(o, name) for o in objects]``; for objects in a sandbox worker, one
    request instead of one per object (a graph of thousands of nodes reads quickly)."""
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
