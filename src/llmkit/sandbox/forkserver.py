"""The fork server: one jailed process per grading run that has imported torch and the
engine once and forks a fresh worker for each exercise (a worker then starts in
milliseconds, not a second of imports). The jail costs one process start per fork
server, not one per worker.

It never runs learner code: each child takes on the limits, user, session, seccomp
filter and directory of its order before it loads anything of the learner's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
from pathlib import Path

from llmkit.sandbox.launch import Jail, SandboxFailure, jailed_popen, make_home


class ForkServer:
    def __init__(self, jail: Jail, root: Path) -> None:
        self.jail = jail
        self.home = make_home(root, None)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = jailed_popen(
            jail, root, ["-m", "llmkit.sandbox.worker", str(theirs.fileno())], self.home,
            pass_fds=(theirs.fileno(),),
        )  # fmt: skip
        theirs.close()
        self.control = ours

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _ask(self, order: dict, timeout_s: float = 120.0) -> tuple[dict, list[int]]:
        self.control.settimeout(timeout_s)
        try:
            self.control.send(json.dumps(order).encode())
            packet, fds, _, _ = socket.recv_fds(self.control, 1 << 16, 1)
        except OSError as exc:
            raise SandboxFailure(f"the sandbox's fork server stopped ({exc}){self._stderr()}") from None
        if not packet:
            raise SandboxFailure(f"the sandbox's fork server stopped{self._stderr()}")
        return json.loads(packet), fds

    def _stderr(self) -> str:
        try:
            tail = (self.home / "stderr.txt").read_bytes()[-1500:].decode(errors="replace").strip()
        except OSError:
            return ""
        return f": {tail}" if tail else ""

    def fork(self, order: dict, timeout_s: float) -> tuple[int, int, int]:
        """A new worker: its pid in the jail, its pid as this process sees it, and the
        grader's end of its channel."""
        reply, fds = self._ask(order)
        if len(fds) != 1:
            raise SandboxFailure("the sandbox's fork server did not hand over a channel")
        channel = fds[0]
        return int(reply["pid"]), worker_pid(channel, timeout_s), channel

    def wait(self, pid: int) -> int | None:
        """The exit code of a worker (by its pid in the jail) that was killed or exited."""
        try:
            return self._ask({"op": "status", "pid": pid}, timeout_s=30)[0]["returncode"]
        except (SandboxFailure, KeyError, ValueError):
            return None

    def close(self) -> None:
        self.control.close()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def worker_pid(channel: int, timeout_s: float) -> int:
    """The worker's pid in this process's pid namespace. The worker's first message on
    its channel, sent before any learner code runs, carries its credentials, which the
    kernel translates into the receiver's namespace (a pid in the jail means nothing here)."""
    sock = socket.socket(fileno=os.dup(channel))
    with sock:
        sock.settimeout(timeout_s)
        try:
            data, ancillary, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(struct.calcsize("3i")))
        except OSError as exc:
            raise SandboxFailure(f"the sandbox worker did not start ({exc})") from None
        finally:
            # A timeout makes the file description non-blocking, and a dup shares it:
            # the channel must stay blocking (a large write would fail with EAGAIN).
            sock.settimeout(None)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and data == b"!":
                return struct.unpack("3i", payload[: struct.calcsize("3i")])[0]
        raise SandboxFailure(
            "the sandbox worker stopped before it started"
            if not data
            else "the sandbox worker did not say who it is"
        )


def announce_self(channel: int) -> None:
    """The worker's side of :func:`worker_pid`."""
    sock = socket.socket(fileno=channel)
    try:
        creds = struct.pack("3i", os.getpid(), os.getuid(), os.getgid())
        sock.sendmsg([b"!"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, creds)])
    finally:
        sock.detach()
