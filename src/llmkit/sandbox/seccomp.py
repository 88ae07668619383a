"""The workers' system-call filter, built with libseccomp (no torch import).

Installed by a worker on itself after start-up and before any learner code runs;
a filter can never be removed, and a child inherits it. Refused with EPERM:

* starting programs (``execve``, ``execveat``), unless the worker must run a
  compiler (Triton on a GPU runs ``ptxas``);
* looking into or steering other processes (``ptrace``, ``process_vm_*``, signals
  to any process but itself);
* changing the jail (``mount`` and friends, ``chroot``, ``pivot_root``, new
  namespaces through ``unshare``, ``setns`` or ``clone`` flags);
* kernel interfaces a worker never needs (``bpf``, ``keyctl``,
  ``perf_event_open``, ``userfaultfd``, io_uring, modules, reboot, clocks);
* sockets other than Unix ones.

``clone3`` answers ENOSYS (its flags cannot be inspected), so the C library
falls back to ``clone``, whose flags are checked.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

ALLOW = 0x7FFF0000
CMP_NE, CMP_MASKED_EQ = 1, 7
AF_UNIX = 1
NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
REFUSED = (
    "ptrace process_vm_readv process_vm_writev kcmp pidfd_open pidfd_getfd pidfd_send_signal "
    "mount umount2 pivot_root chroot move_mount open_tree fsopen fsmount fspick mount_setattr "
    "unshare setns bpf keyctl add_key request_key perf_event_open userfaultfd "
    "io_uring_setup io_uring_enter io_uring_register kexec_load kexec_file_load init_module "
    "finit_module delete_module reboot swapon swapoff acct syslog settimeofday clock_settime "
    "clock_adjtime adjtimex quotactl open_by_handle_at name_to_handle_at fanotify_init "
    "lookup_dcookie iopl ioperm tkill"
).split()
EXEC = ("execve", "execveat")


class SeccompUnavailable(RuntimeError):
    pass


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def _library():
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise SeccompUnavailable(f"libseccomp is not installed ({exc})") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


def check_available() -> None:
    """Raise :class:`SeccompUnavailable` unless a filter can be built here."""
    lib = _library()
    ctx = lib.seccomp_init(ALLOW)
    if not ctx:
        raise SeccompUnavailable("seccomp_init failed")
    lib.seccomp_release(ctx)


def install_filter(*, allow_exec: bool = False) -> None:
    """Install the filter on this process (and every thread and child it starts later)."""
    lib = _library()
    ctx = lib.seccomp_init(ALLOW)
    if not ctx:
        raise SeccompUnavailable("seccomp_init failed")
    eperm = _errno_action(errno.EPERM)
    pid = os.getpid()

    def rule(name: str, action: int, *conditions: tuple[int, int, int, int]) -> None:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:
            return  # not a system call on this architecture
        array = (_ArgCmp * max(1, len(conditions)))(*[_ArgCmp(*c) for c in conditions])
        if lib.seccomp_rule_add_array(ctx, action, nr, len(conditions), array) != 0:
            raise SeccompUnavailable(f"could not add the seccomp rule for {name}")

    try:
        for name in [*REFUSED, *(() if allow_exec else EXEC)]:
            rule(name, eperm)
        for flag in NAMESPACE_FLAGS.values():
            rule("clone", eperm, (0, CMP_MASKED_EQ, flag, flag))
        rule("clone3", _errno_action(errno.ENOSYS))
        rule("socket", eperm, (0, CMP_NE, AF_UNIX, 0))
        rule("kill", eperm, (0, CMP_NE, pid, 0))
        rule("tgkill", eperm, (0, CMP_NE, pid, 0))
        if lib.seccomp_load(ctx) != 0:
            raise SeccompUnavailable("seccomp_load failed")
    finally:
        lib.seccomp_release(ctx)
