"""The sandbox's audit hook (no torch import: child processes install it cheaply).

A Python audit hook cannot stop a determined attacker with native code, so it is
not the boundary: the process, its limits and the grader's decoder are. It keeps
honest mistakes and casual cheating from working: reading the kit's solutions
and graders, writing outside the sandbox directory, starting processes, loading
native libraries and signalling other processes.
"""

from __future__ import annotations

import os
import sys

# Events that start processes, load native libraries or signal other processes.
BLOCKED_EVENTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "subprocess.Popen",
        "pty.spawn",
        "ctypes.dlopen",
        "os.killpg",
        "signal.pthread_kill",
        "socket.connect",
        "socket.bind",
    }
)
# Events that change the file system: allowed only inside the sandbox directory.
WRITE_EVENTS = frozenset(
    {
        "os.remove",
        "os.rmdir",
        "os.rename",
        "os.truncate",
        "os.chmod",
        "os.chown",
        "os.link",
        "os.symlink",
        "os.utime",
        "os.mkdir",
        "shutil.rmtree",
        "shutil.move",
        "shutil.copyfile",
    }
)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


# The system's own files: shared libraries, devices, process and CPU information.
SYSTEM_ROOTS = ("/usr", "/lib", "/lib64", "/etc", "/dev", "/proc", "/sys")
LIST_EVENTS = frozenset({"os.listdir", "os.scandir", "glob.glob"})


def install_audit_hook(home: str, protected: list[str], allowed: list[str]) -> None:
    """Allow reading (and listing) only ``home``, ``allowed`` (the interpreter's
    prefixes, the engine) and the system's directories, and never what is under
    ``protected`` (the kit's checkout: solutions, graders) unless it is also under
    ``allowed`` (a virtual environment inside the checkout). Refuse writes outside
    ``home``, new processes, native library loads and signals to other processes."""
    home = os.path.realpath(home) + os.sep
    protected = tuple(os.path.realpath(p) + os.sep for p in protected)
    allowed = tuple(os.path.realpath(p) + os.sep for p in allowed)
    readable = (home, *allowed, *(root + os.sep for root in SYSTEM_ROOTS))
    writable = (home, "/dev/null" + os.sep)
    realpath, fspath, getpid = os.path.realpath, os.fsdecode, os.getpid

    def resolve(path) -> str | None:
        if isinstance(path, int):
            return None
        try:
            return realpath(fspath(path)) + os.sep
        except (TypeError, ValueError):
            return None

    def may_read(path: str) -> bool:
        if path.startswith(protected) and not path.startswith(allowed):
            return False
        return path.startswith(readable)

    def refuse(what: str) -> None:
        raise PermissionError(f"the grading sandbox does not allow {what}")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path = resolve(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(flags & WRITE_FLAGS)
            if writes and not path.startswith(writable):
                refuse(f"writing {path[:-1]}")
            if not may_read(path):
                refuse(f"reading {path[:-1]}")
        elif event in LIST_EVENTS:
            path = resolve(args[0]) if args and isinstance(args[0], (str, bytes, os.PathLike)) else None
            if path is not None and not may_read(path):
                refuse(f"listing {path[:-1]}")
        elif event in WRITE_EVENTS:
            for arg in args[:2]:
                path = resolve(arg) if isinstance(arg, (str, bytes, os.PathLike)) else None
                if path is not None and not path.startswith(home):
                    refuse(f"{event} on {path[:-1]}")
        elif event == "os.kill":
            if args[0] != getpid():
                refuse("signalling other processes")
        elif event in BLOCKED_EVENTS:
            refuse(f"{event} (starting processes, loading native libraries or networking)")

    sys.addaudithook(hook)


def apply_limits(caps: dict[str, int]) -> None:
    """Set each ``resource.RLIMIT_*`` named in ``caps`` (soft and hard), never above the
    current hard limit. Used in a child before it runs anything of the learner's."""
    import resource

    for name, value in caps.items():
        which = getattr(resource, name)
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))
