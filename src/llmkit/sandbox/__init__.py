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

Graders and the engine's checks (``value_and_grad``) drive the learner's objects
through handles from the grader's side, one operation at a time (:func:`pipelined`
sends many operations in one round trip); no engine helper or oracle runs beside the
learner's code to compute a verdict input. Checks that need a worker
(``value_and_grad``, the speed comparison with worker CPU time from the OS) look for
a remote handle through :func:`worker_of` and :func:`active`; peak memory is the OS's
count for a fresh process (:func:`llmkit.memory.peak_memory_of_call`).
"""

from __future__ import annotations

import contextlib

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


@contextlib.contextmanager
def pipelined(*objects):
    """Many operations on the learner's objects, few round trips.

    When one of ``objects`` is a remote handle, then inside the block every operation
    on that worker's handles whose answer is an object (an attribute read, a call, an
    operator, indexing) is queued, and gives a handle at once; the queue travels with
    the next request that needs an answer (reading data, e.g. with
    :func:`llmkit.checks.attributes`, or ``len``, ``bool``, ``float``), or at the end
    of the block. So read results as data only through such requests inside the block
    (``node.data`` there is a handle); an error in a queued operation is raised by that
    request. In-process the block changes nothing::

        with pipelined(impl):
            nodes = evaluate([impl.Value(x) for x in leaves], steps)  # queued
            nodes[-1].backward()  # queued
            grads = attributes(nodes, "grad")  # one round trip for all of it
    """
    worker = _worker_in(objects, {}) if _active is not None else None
    if worker is None:
        yield
        return
    with worker.deferring():
        yield
