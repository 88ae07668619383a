"""Sandboxed execution of learner code for instructor grading (``pytest --sandbox``).

* :mod:`llmkit.sandbox.wire` — the message format: JSON plus raw buffers, never
  pickle from the worker;
* :mod:`llmkit.sandbox.worker` — the process where learner code runs;
* :mod:`llmkit.sandbox.client` — worker processes, their limits, and the remote
  handles graders call as if they were the learner's module.

The engine's checks that must run next to the learner's code (``value_and_grad``,
``measure_memory``) and the speed comparison (worker CPU time from the OS) look
for a remote handle through :func:`worker_of` and :func:`active`.
"""

from __future__ import annotations

_active = None  # the Sandbox of this pytest run, when --sandbox is on


def activate(sandbox) -> None:
    global _active
    _active = sandbox


def active():
    """The running :class:`~llmkit.sandbox.client.Sandbox`, or None when learner code runs in-process."""
    return _active


def worker_of(value):
    """The worker holding ``value`` when it is a remote handle, else None."""
    if _active is None:
        return None
    from llmkit.sandbox.client import worker_of as _worker_of

    return _worker_of(value)
