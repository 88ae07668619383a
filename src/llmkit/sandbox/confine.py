"""Confinement of a fresh child process before anything of the learner's runs (no
torch import: the script launcher uses it, and a launcher that had imported torch
would hand its own peak RSS to the process it starts, across exec)."""

from __future__ import annotations

import os
import sys

from llmkit.sandbox.audit import apply_limits


def _prctl(option: int, value: int) -> None:
    import ctypes

    ctypes.CDLL(None).prctl(option, value, 0, 0, 0)


def die_with_parent() -> None:
    """Be killed when the parent process dies, so no worker outlives its grader."""
    import signal

    _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def not_dumpable() -> None:
    """No process of the same user may trace this one, or read or write its memory
    through /proc (the fork server and the script launcher share a user with workers)."""
    _prctl(4, 0)  # PR_SET_DUMPABLE


def confine(order: dict) -> None:
    """In a fresh child, before anything of the learner's: die with the parent, a
    session of its own, the order's limits, its directory, environment and user
    (when the grader is root), no new privileges, stdin/stdout to /dev/null and
    stderr to ``stderr.txt`` in its directory."""
    import tempfile

    die_with_parent()
    os.setsid()
    apply_limits(order["limits"])
    home = order["home"]
    null = os.open(os.devnull, os.O_RDWR)
    err = os.open(os.path.join(home, "stderr.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    if order.get("uid") is not None:
        os.fchown(err, order["uid"], order["gid"])
        os.setgroups([])
        os.setresgid(order["gid"], order["gid"], order["gid"])
        os.setresuid(order["uid"], order["uid"], order["uid"])
    _prctl(38, 1)  # PR_SET_NO_NEW_PRIVS
    not_dumpable()
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(err, 2)
    os.close(null)
    os.close(err)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the process's own streams
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    os.chdir(home)
    os.environ.clear()
    os.environ.update(order["env"])
    tempfile.tempdir = None
