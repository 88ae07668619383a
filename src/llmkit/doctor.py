"""``llmkit doctor``: what this machine can do with the kit, one line per item, with the
fix where something is wrong.

Each check returns a :class:`Finding`. ``ok`` and ``note`` never fail the run (a note is
something only some users need: a GPU, nbgrader, the grading jail); ``problem`` is
something the kit's tests need, and makes the command exit 1.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass

MIN_PYTHON = (3, 10)


@dataclass(frozen=True)
class Finding:
    item: str
    status: str  # "ok" | "note" | "problem"
    detail: str
    fix: str = ""


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_python() -> Finding:
    version = platform.python_version()
    if sys.version_info[:2] < MIN_PYTHON:
        need = ".".join(map(str, MIN_PYTHON))
        return Finding("python", "problem", f"{version} ({sys.executable})", f"use Python >= {need}")
    return Finding("python", "ok", f"{version} ({sys.executable})")


def check_torch() -> Finding:
    if not _installed("torch"):
        fix = "pip install torch==2.13.0 (the CPU build), then the kit"
        return Finding("torch", "problem", "not installed", fix)
    import torch

    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    return Finding("torch", "ok", f"{torch.__version__}, {build}")


def check_gpu() -> Finding:
    import torch

    if not torch.cuda.is_available():
        why = "the CPU build of torch" if not torch.version.cuda else "no CUDA device visible"
        return Finding("gpu", "note", f"none ({why}): GPU-only graders report 'not graded: no GPU'")
    major, minor = torch.cuda.get_device_capability(0)
    name = torch.cuda.get_device_name(0)
    return Finding("gpu", "ok", f"{name}, compute capability {major}.{minor}")


def check_triton() -> Finding:
    if not _installed("triton"):
        fix = "pip install -e '.[gpu]' (it works without a GPU)"
        return Finding("triton", "note", "not installed: exercise 7.2 skips", fix)
    from importlib.metadata import version

    import torch

    interpreter = os.environ.get("TRITON_INTERPRET") == "1" or not torch.cuda.is_available()
    where = "kernels run in Triton's interpreter on the CPU" if interpreter else "kernels compile for the GPU"
    return Finding("triton", "ok", f"{version('triton')}: {where}")


def check_assets() -> list[Finding]:
    from llmkit import assets
    from llmkit.catalog import CatalogError, assets_in_use

    try:
        names = assets_in_use()
    except CatalogError as exc:
        return [Finding("assets", "problem", f"the catalog cannot be read: {exc}")]
    findings = []
    for name in names:
        try:
            cached = assets.read(name) is not None
        except assets.AssetError as exc:
            findings.append(Finding(f"asset {name}", "problem", str(exc), "llmkit fetch-assets"))
            continue
        if cached:
            findings.append(Finding(f"asset {name}", "ok", f"cached at {assets.path(name)}"))
        else:
            what = f"{assets.get(name).what} not cached"
            findings.append(Finding(f"asset {name}", "problem", what, "llmkit fetch-assets"))
    return findings


def check_jail() -> Finding:
    if sys.platform != "linux":
        return Finding("grading jail", "note", f"none on {sys.platform}: llmkit grade needs Linux")
    from llmkit.sandbox.launch import JailUnavailable, choose_jail

    try:
        jail = choose_jail("auto")
    except JailUnavailable as exc:
        fix = "apt-get install bubblewrap libseccomp2"
        return Finding("grading jail", "note", f"unavailable (instructors only): {exc}", fix)
    return Finding("grading jail", "ok", f"{jail.kind} (llmkit grade confines learner code there)")


def check_nbgrader() -> Finding:
    if not _installed("nbgrader"):
        fix = "pip install -e '.[instructor]'"
        return Finding("nbgrader", "note", "not installed (instructors only)", fix)
    from importlib.metadata import version

    return Finding("nbgrader", "ok", version("nbgrader"))


CHECKS: list[Callable[[], Finding | list[Finding]]] = [
    check_python,
    check_torch,
    check_gpu,
    check_triton,
    check_assets,
    check_jail,
    check_nbgrader,
]


def run_checks(checks=None) -> list[Finding]:
    """Every check's findings; a check that crashes is a problem of its own, not a traceback."""
    findings: list[Finding] = []
    for check in checks or CHECKS:
        name = check.__name__.removeprefix("check_")
        if name == "gpu" and any(f.item == "torch" and f.status == "problem" for f in findings):
            continue  # no torch, no GPU question
        try:
            found = check()
        except Exception as exc:  # noqa: BLE001 - the doctor reports, it does not crash
            found = Finding(name, "problem", f"the check failed: {type(exc).__name__}: {exc}")
        findings += found if isinstance(found, list) else [found]
    return findings
