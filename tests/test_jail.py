"""The jail around sandbox workers, from the inside: what a worker can see and do.

Each jail is probed by a learner module that tries, with native calls the audit
hook never sees (libc through ``ctypes.pythonapi``), to read a secret the grader
can read, start a program, signal other processes and make a namespace. Both
jails are exercised: bubblewrap namespaces (as root, and as an ordinary user) and
the dedicated-user jail of a root grader without namespaces. The grader runs on a
Python every user can read (Debian's, with this checkout's packages added), as
it must for an ordinary user or the dedicated user to run it.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from llmkit.sandbox import launch

NOBODY = 65534
PROBE = r"""
import ctypes, os

libc = ctypes.pythonapi
libc.read.restype = ctypes.c_ssize_t


def probe(secret):
    fd = libc.open(secret.encode(), 0)
    read = -1
    if fd >= 0:
        buf = ctypes.create_string_buffer(100)
        read = libc.read(fd, buf, 100)
    argv = (ctypes.c_char_p * 3)(b"/bin/true", None, None)
    try:
        homes = sorted(os.listdir("/home")) if os.path.isdir("/home") else None
    except PermissionError:  # the audit hook (the user jail)
        homes = "refused"
    status = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        status[key] = value.strip()
    return {
        "uid": os.getuid(),
        "secret_readable": read > 0,
        "secret_visible": os.path.exists(secret),
        "exec": libc.execv(b"/bin/true", argv),
        "kill_1": libc.kill(1, 0),
        "unshare_user": libc.unshare(0x10000000),
        "no_new_privs": status.get("NoNewPrivs"),
        "seccomp": status.get("Seccomp"),
        "home_listing": homes,
        "pids": len([p for p in os.listdir("/proc") if p.isdigit()]),
    }
"""
GRADER = r"""
import json, pathlib, sys
import llmkit
from llmkit.sandbox.session import Sandbox

secret, learner = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
paths = [sys.prefix, sys.base_prefix, *sys.path]
allowed = [pathlib.Path(p) for p in paths if p and pathlib.Path(p).is_dir()]
sandbox = Sandbox(protected=[secret.parent], allowed=allowed, secret=[secret.parent])
try:
    print(json.dumps({"jail": sandbox.jail.kind, **sandbox.module("9.1", [learner], ()).probe(str(secret))}))
finally:
    sandbox.close()
"""


def _world_readable(path: Path) -> bool:
    return launch._world_usable(path, stat.S_IROTH | stat.S_IXOTH)


@pytest.fixture(scope="module")
def world_python():
    """A Python every user can run, seeing this environment's packages and the engine."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch users")
    base = Path("/usr/bin/python3")
    packages = [Path(p) for p in site.getsitepackages()]
    if not base.exists():
        pytest.skip("no system Python at /usr/bin/python3")
    version = subprocess.run([base, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True)
    if version.stdout.decode().strip() != str(tuple(sys.version_info[:2])):
        pytest.skip(f"/usr/bin/python3 is not Python {sys.version_info[0]}.{sys.version_info[1]}")
    engine = Path(launch.__file__).parents[2]
    unreadable = [p for p in [*packages, engine] if not _world_readable(p)]
    if unreadable:
        pytest.skip(f"not readable by every user here: {unreadable}")
    root = Path(tempfile.mkdtemp(prefix="llmkit-world-python-"))
    os.chmod(root, 0o755)
    subprocess.run([base, "-m", "venv", "--without-pip", root / "venv"], check=True)
    pth = next((root / "venv" / "lib").glob("python3*/site-packages")) / "llmkit_test_packages.pth"
    pth.write_text("".join(f"import site; site.addsitedir({str(p)!r})\n" for p in packages))
    yield root / "venv" / "bin" / "python"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def secret_and_probe():
    """A secret directory that the grading user can read, and the probing learner module."""
    root = Path(tempfile.mkdtemp(prefix="llmkit-jail-test-"))
    os.chmod(root, 0o755)
    secret_dir = root / "kit"
    secret_dir.mkdir(mode=0o700)
    (secret_dir / "solution.txt").write_text("the reference solution")
    learner = root / "probe.py"
    learner.write_text(PROBE)
    yield secret_dir, learner
    shutil.rmtree(root, ignore_errors=True)


def grade_probe(python: Path, jail: str, secret_dir: Path, learner: Path, as_user: int | None = None) -> dict:
    cmd = [str(python), "-c", GRADER, str(secret_dir / "solution.txt"), str(learner)]
    if as_user is not None:
        os.chown(secret_dir, as_user, as_user)
        os.chown(secret_dir / "solution.txt", as_user, as_user)
        cmd = ["setpriv", f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups", *cmd]
    env = {**os.environ, "LLMKIT_JAIL": jail, "TMPDIR": "/tmp"}
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd="/")
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def assert_confined(seen: dict) -> None:
    assert not seen["secret_readable"], "the worker read a file outside its jail"
    assert seen["exec"] == -1, "the worker started a program"
    assert seen["kill_1"] == -1, "the worker could signal another process"
    assert seen["unshare_user"] == -1, "the worker made a user namespace"
    assert seen["no_new_privs"] == "1"
    assert seen["seccomp"] == "2", "no seccomp filter"
    assert seen["uid"] != 0


needs_namespaces = pytest.mark.skipif(
    launch.namespaces_available() is not None, reason=f"no namespaces here: {launch.namespaces_available()}"
)


@needs_namespaces
def test_namespace_jail_as_root(world_python, secret_and_probe):
    seen = grade_probe(world_python, "namespaces", *secret_and_probe)
    assert seen["jail"] == "namespaces"
    assert_confined(seen)
    assert not seen["secret_visible"], "the kit's directory is visible in the jail"
    assert seen["uid"] == NOBODY
    assert seen["pids"] <= 4, "the worker sees processes outside its jail"
    assert seen["home_listing"] in (None, []), "the worker sees the machine's home directories"


@needs_namespaces
def test_namespace_jail_as_an_ordinary_user(world_python, secret_and_probe):
    seen = grade_probe(world_python, "namespaces", *secret_and_probe, as_user=NOBODY)
    assert seen["jail"] == "namespaces"
    assert_confined(seen)
    assert not seen["secret_visible"]
    assert seen["pids"] <= 4


def test_user_jail_for_a_root_grader_without_namespaces(world_python, secret_and_probe):
    seen = grade_probe(world_python, "user", *secret_and_probe)
    assert seen["jail"] == "user"
    assert_confined(seen)
    assert seen["uid"] == NOBODY


def test_user_jail_refuses_a_kit_the_sandbox_user_could_read(world_python, secret_and_probe):
    secret_dir, learner = secret_and_probe
    os.chmod(secret_dir, 0o755)
    os.chmod(secret_dir / "solution.txt", 0o644)
    cmd = [str(world_python), "-c", GRADER, str(secret_dir / "solution.txt"), str(learner)]
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "LLMKIT_JAIL": "user"})
    assert run.returncode != 0
    assert f"chmod -R o-rwx {secret_dir}" in run.stderr


def test_no_jail_means_refusal_naming_the_flag(monkeypatch):
    monkeypatch.setattr(launch, "namespaces_available", lambda: "bubblewrap (bwrap) is not installed")
    monkeypatch.setattr(launch.os, "geteuid", lambda: 1000)
    with pytest.raises(launch.JailUnavailable) as refused:
        launch.choose_jail("auto")
    assert "bubblewrap (bwrap) is not installed" in str(refused.value)
    assert launch.TRUST_FLAG in str(refused.value)
    with pytest.raises(launch.JailUnavailable, match="needs a root grader"):
        launch.choose_jail("user")
    assert launch.choose_jail("trusted").kind == "trusted"


def test_a_root_grader_without_namespaces_falls_back_to_the_user_jail(monkeypatch):
    monkeypatch.setattr(launch, "namespaces_available", lambda: "bwrap could not create namespaces here")
    monkeypatch.setattr(launch.os, "geteuid", lambda: 0)
    jail = launch.choose_jail("auto")
    assert jail.kind == "user" and jail.uid not in (None, 0)
    with pytest.raises(launch.JailUnavailable, match=launch.TRUST_FLAG):
        launch.choose_jail("namespaces")
