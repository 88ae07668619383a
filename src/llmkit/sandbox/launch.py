"""Launch policy: which jail a grading run uses, and how a jailed process is started.

Three kinds of jail, chosen once per grading run (:func:`choose_jail`):

* ``namespaces`` — bubblewrap (``bwrap``) puts the fork server and its workers in
  new user (when the grader is not root), pid, mount, net, ipc and uts
  namespaces. The jail's file system holds read-only binds of the system
  directories, the interpreter's prefixes and the engine, its own ``/proc``
  (read-only) and ``/dev``, an empty ``/tmp`` and one writable directory: the
  run's homes. Nothing of the kit's checkout (solutions, graders,
  mutants), no other submission, no output directory, no home directory.
* ``user`` — where namespaces are refused (many containers) and the grader is
  root: each worker drops to a dedicated unprivileged user that must not be able
  to read the kit's secrets or the results (checked before grading).
* ``trusted`` — no jail at all (``--trust-submissions``): only for code you trust.

In every jail each worker also runs with no new privileges, a seccomp filter
(:mod:`llmkit.sandbox.seccomp`), resource limits, a session of its own and
``PR_SET_PDEATHSIG``; there is no silent fallback from one kind to a weaker one.
"""

from __future__ import annotations

import ctypes
import functools
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from llmkit.failures import CheckFailure

MALLOC_MMAP_THRESHOLD = 32 * 2**20
MALLOC_TRIM_THRESHOLD = 256 * 2**20
JAILS = ("namespaces", "user", "trusted")
TRUST_FLAG = "--trust-submissions"


class SandboxFailure(CheckFailure):
    """The worker crashed, hung, broke a limit or answered garbage: the test fails."""


class JailUnavailable(RuntimeError):
    """No jail of the kind asked for can be built on this machine; grading refuses to start."""


@dataclass(frozen=True)
class Limits:
    call_timeout_s: float = 60.0  # wall clock, per request (the references need a few seconds at most)
    start_timeout_s: float = 120.0  # interpreter start and module import
    memory_bytes: int = 4 * 2**30  # address space
    cpu_seconds: int = 1800  # CPU time over the worker's life
    file_bytes: int = 64 * 2**20  # largest file the worker may write
    open_files: int = 256
    processes: int = 512  # per user; applies when the worker runs as an unprivileged user
    timeouts_per_exercise: int = 1  # after this many, the exercise's remaining tests fail at once

    @classmethod
    def from_env(cls) -> Limits:
        """Overrides from ``LLMKIT_SANDBOX_TIMEOUT`` (s) and ``LLMKIT_SANDBOX_MEMORY_MB``."""
        kw = {}
        if os.environ.get("LLMKIT_SANDBOX_TIMEOUT"):
            kw["call_timeout_s"] = float(os.environ["LLMKIT_SANDBOX_TIMEOUT"])
        if os.environ.get("LLMKIT_SANDBOX_MEMORY_MB"):
            kw["memory_bytes"] = int(os.environ["LLMKIT_SANDBOX_MEMORY_MB"]) * 2**20
        return cls(**kw)


# --- choosing the jail --------------------------------------------------------------


@dataclass(frozen=True)
class Jail:
    """The jail of one grading run."""

    kind: str  # one of JAILS
    user: pwd.struct_passwd | None  # the unprivileged user workers become (root graders)

    @property
    def uid(self) -> int | None:
        return self.user.pw_uid if self.user else None

    @property
    def gid(self) -> int | None:
        return self.user.pw_gid if self.user else None


def sandbox_user() -> pwd.struct_passwd:
    """The dedicated unprivileged user of root graders: ``LLMKIT_SANDBOX_USER`` or ``nobody``."""
    name = os.environ.get("LLMKIT_SANDBOX_USER") or "nobody"
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        raise JailUnavailable(f"the sandbox user {name!r} does not exist on this machine") from None
    if user.pw_uid == 0 or user.pw_uid == os.geteuid():
        raise JailUnavailable(f"the sandbox user {name!r} is not an unprivileged user of its own")
    return user


@functools.cache
def namespaces_available() -> str | None:
    """None when bubblewrap can build a jail here, else why not (one line)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    probe = [bwrap, *_namespace_flags(), "--ro-bind", "/", "/", "--proc", "/proc", "true"]
    try:
        run = subprocess.run(probe, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not run ({exc})"
    if run.returncode != 0:
        why = run.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap could not create namespaces here ({why[-1] if why else run.returncode})"
    return None


def choose_jail(kind: str | None = None) -> Jail:
    """The jail for ``kind`` (``LLMKIT_JAIL`` when None; ``auto`` picks the strongest
    available). Raises :class:`JailUnavailable`, saying why and naming the flag that
    accepts the risk, when none can be built; never degrades silently."""
    kind = kind or os.environ.get("LLMKIT_JAIL") or "auto"
    root = os.geteuid() == 0
    if kind == "trusted":
        return Jail("trusted", None)
    if kind not in ("auto", *JAILS):
        raise JailUnavailable(f"unknown jail {kind!r}; choose auto, namespaces, user or trusted")
    ns_problem = namespaces_available() if kind in ("auto", "namespaces") else "not asked for"
    if ns_problem is None:
        return Jail("namespaces", sandbox_user() if root else None)
    if kind == "namespaces" or (kind == "auto" and not root):
        how = (
            "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and allow unprivileged "
            "user namespaces, or grade as root (workers then run as a dedicated unprivileged user)"
        )
        raise JailUnavailable(
            f"cannot jail learner code: {ns_problem}. To fix: {how}. To grade anyway, without a jail, "
            f"pass {TRUST_FLAG} (only for code you trust)"
        )
    if not root:
        raise JailUnavailable(
            f"the 'user' jail needs a root grader (to switch workers to an unprivileged user); "
            f"pass {TRUST_FLAG} to grade without a jail (only for code you trust)"
        )
    return Jail("user", sandbox_user())


def _world_usable(path: Path, need: int) -> bool:
    """Whether a user other than the owner may reach ``path`` (o+x on every parent) and use it."""
    path = path.resolve()
    try:
        if not path.stat().st_mode & need:
            return False
        return all(p.stat().st_mode & stat.S_IXOTH for p in path.parents)
    except OSError:
        return False


def check_user_jail(jail: Jail, readable: list[Path], secret: list[Path]) -> None:
    """For the ``user`` jail: the worker's user must read ``readable`` (the interpreter,
    the engine) and must not read ``secret`` (solutions, graders, results)."""
    if jail.kind != "user":
        return
    name = jail.user.pw_name
    for path in readable:
        if not _world_usable(path, stat.S_IROTH | stat.S_IXOTH):
            raise JailUnavailable(
                f"the sandbox user {name} cannot read {path}: install Python and the kit where every "
                f"user can read them (e.g. /opt), or use a jail with namespaces (bubblewrap)"
            )
    for path in secret:
        if path.exists() and _world_usable(path, stat.S_IROTH):
            raise JailUnavailable(
                f"the sandbox user {name} could read {path}: run `chmod -R o-rwx {path}` "
                f"(learner code must not see it), or use a jail with namespaces (bubblewrap)"
            )


# --- starting a jailed process --------------------------------------------------------


def worker_environment(home: Path) -> dict[str, str]:
    """A scrubbed environment: nothing from the grader's but what a Python process needs."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "TRITON_CACHE_DIR": str(home / "triton-cache"),
        "PYTHONDONTWRITEBYTECODE": "1",
        # Keep freed memory for reuse, as a long-running process's allocator ends up
        # doing: a fresh process otherwise pays page faults on every large tensor, which
        # doubled exercise-sized call times and would distort the speed ratios.
        "MALLOC_MMAP_THRESHOLD_": str(MALLOC_MMAP_THRESHOLD),
        "MALLOC_TRIM_THRESHOLD_": str(MALLOC_TRIM_THRESHOLD),
    }
    if os.environ.get("TRITON_INTERPRET"):
        env["TRITON_INTERPRET"] = os.environ["TRITON_INTERPRET"]
    return env


def make_home(parent: Path | None, user: pwd.struct_passwd | None) -> Path:
    """A fresh private directory (under ``parent``, the jail's writable root) for one process."""
    home = Path(tempfile.mkdtemp(prefix="llmkit-sandbox-", dir=parent))
    (home / "tmp").mkdir()
    (home / "triton-cache").mkdir()
    if user is not None:
        for path in (home, home / "tmp", home / "triton-cache"):
            os.chown(path, user.pw_uid, user.pw_gid)
    return home


def resource_limits(limits: Limits, unprivileged: bool) -> dict[str, int]:
    """``limits`` as resource-module names and values (RLIMIT_NPROC counts per user, so it
    applies only to a worker running as its own unprivileged user)."""
    caps = {
        "RLIMIT_AS": limits.memory_bytes,
        "RLIMIT_CPU": limits.cpu_seconds,
        "RLIMIT_FSIZE": limits.file_bytes,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_CORE": 0,
    }
    if unprivileged:
        caps["RLIMIT_NPROC"] = limits.processes
    return caps


def _namespace_flags() -> list[str]:
    flags = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if os.geteuid() != 0:
        flags.insert(0, "--unshare-user")
    return [*flags, "--die-with-parent", "--new-session"]


def _python_dirs() -> list[str]:
    """What the interpreter reads: its prefixes and every package directory on its path
    (a ``.pth`` file may add one outside the prefix), as real paths, outermost first.
    Never other entries of ``sys.path``: the current directory may be the kit's checkout."""
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    paths += [p for p in sys.path if os.path.basename(p.rstrip("/")) in ("site-packages", "dist-packages")]
    real = {os.path.realpath(p) for p in paths if p and os.path.isdir(p)}
    system = ("/usr/", "/bin/", "/sbin/", "/lib")
    return sorted((p for p in real if not (p + "/").startswith(system) and p != "/usr"), key=len)


def _engine_dir() -> Path:
    import llmkit

    return Path(llmkit.__file__).resolve().parent


def jail_command(jail: Jail, writable: Path, argv: list[str]) -> list[str]:
    """``argv`` (a ``python -I ...`` command line) wrapped in the jail's launcher.

    For ``namespaces``: bwrap with the binds described in the module docstring; a
    root grader keeps CAP_SETUID/CAP_SETGID in the jail only so the fork server can
    switch each worker to the sandbox user (the worker then has no capabilities)."""
    if jail.kind != "namespaces":
        return argv
    cmd = [shutil.which("bwrap") or "bwrap", *_namespace_flags()]
    made: set[str] = {"/"}

    def parents(target: str) -> list[str]:
        """World-traversable parent directories for a bind at ``target`` (bwrap would
        make them 0700 as root, which the sandbox user cannot pass)."""
        out = []
        for parent in reversed(Path(target).parents):
            if str(parent) not in made and not str(parent).startswith(("/proc", "/dev", "/sys")):
                made.add(str(parent))
                out += ["--perms", "0755", "--dir", str(parent)]
        return out

    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    for name in (
        "ld.so.cache",
        "ld.so.conf",
        "ld.so.conf.d",
        "passwd",
        "group",
        "nsswitch.conf",
        "localtime",
    ):
        cmd += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    cmd += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
    bound: list[str] = []
    for path in _python_dirs():
        if not any(path == b or path.startswith(b + "/") for b in bound):
            bound.append(path)
            cmd += [*parents(path), "--ro-bind", path, path]
    for path in (sys.prefix, sys.base_prefix, os.path.dirname(sys.executable)):
        real = os.path.realpath(path)
        if real != os.path.abspath(path) and not any(path.startswith(b + "/") for b in bound):
            cmd += [*parents(path), "--symlink", real, path]  # a prefix reached through a link
    engine = _engine_dir()
    cmd += [*parents(str(engine)), "--ro-bind", str(engine), str(engine)]
    for dev in sorted(Path("/dev").glob("nvidia*")):  # a GPU, for the Triton exercise
        cmd += ["--dev-bind", str(dev), str(dev)]
    cmd += [*parents(str(writable)), "--bind", str(writable), str(writable)]
    cmd += ["--remount-ro", "/proc", "--chdir", str(writable)]
    if jail.user is not None:
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return [*cmd, "--", *argv]


def jailed_popen(
    jail: Jail,
    writable: Path,
    argv: list[str],
    home: Path,
    *,
    pass_fds: tuple[int, ...] = (),
    stdout=subprocess.DEVNULL,
    stderr=None,
) -> subprocess.Popen:
    """Start ``python -I argv...`` in ``jail`` with the workers' environment, in ``home``."""
    if stderr is None:
        stderr = open(home / "stderr.txt", "wb")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        jail_command(jail, writable, [sys.executable, "-I", *argv]),
        cwd=home,
        env=worker_environment(home),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        pass_fds=pass_fds,
        start_new_session=True,
        close_fds=True,
    )


def match_worker_allocator() -> None:
    """Give this (grader) process the workers' allocator settings, so baselines timed
    here and learner code timed there allocate alike (glibc only; a no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, MALLOC_MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, MALLOC_TRIM_THRESHOLD)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


_libc = None


def process_cpu_clock(pid: int) -> int | None:
    """The clock id of another process's CPU time (the OS's accounting), or None."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        clock = ctypes.c_int()
        if _libc.clock_getcpuclockid(pid, ctypes.byref(clock)) != 0:
            return None
        return clock.value
    except (OSError, AttributeError):
        return None
