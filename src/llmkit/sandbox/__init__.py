"""Sandboxed execution of learner code for instructor grading (``pytest --sandbox``).

* :mod:`llmkit.sandbox.wire` — the message format: JSON plus raw buffers, never
  pickle from the worker;
* :mod:`llmkit.sandbox.worker` — the process where learner code runs;
* :mod:`llmkit.sandbox.launch` — the jail (bubblewrap namespaces, or a dedicated
  user), the workers' environment and limits;
* :mod:`llmkit.sandbox.seccomp` — the workers' system-call filter;
* :mod:`llmkit.sandbox.forkserver` — the jailed process that forks the workers;
* :mod:`llmkit.sandbox.channel` — the grader's end of one worker;
* :mod:`llmkit.sandbox.remote` — the handles graders call as if they were the
  learner's objects;
* :mod:`llmkit.sandbox.script` — learner code in a fresh process, measured by the OS;
* :mod:`llmkit.sandbox.session` — one grading run's sandbox.

The engine's checks that must run next to the learner's code (``value_and_grad``,
``measure_memory``) and the speed comparison (worker CPU time from the OS) look
for a remote handle through :func:`worker_of` and :func:`active`.
"""

from __future__ import annotations

import functools

_active = None  # the Sandbox of this pytest run, when --sandbox is on


def activate(sandbox) -> None:
    global _active
    _active = sandbox


def active():
    """The running :class:`~llmkit.sandbox.session.Sandbox`, or None when learner code runs in-process."""
    return _active


def worker_of(value):
    """The worker holding ``value`` when it is a remote handle, else None."""
    if _active is None:
        return None
    from llmkit.sandbox.remote import worker_of as _worker_of

    return _worker_of(value)


def _worker_in(args, kwargs):
    for value in [*args, *kwargs.values()]:
        for item in value if isinstance(value, (list, tuple)) else [value]:
            worker = worker_of(item)
            if worker is not None:
                return worker
    return None


def beside_learner_code(fn):
    """For engine helpers that call learner objects many times (e.g. run a program of
    operations on them): when an argument is a remote handle, the whole helper runs in
    that handle's worker, as one request, and plain data or handles come back."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        worker = _worker_in(args, kwargs) if _active is not None else None
        if worker is None:
            return fn(*args, **kwargs)
        target = f"{fn.__module__}:{fn.__qualname__}"
        return worker.request("engine", target, list(args), kwargs, doing=f"{fn.__name__}() on your objects")

    return wrapper
