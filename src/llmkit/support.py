"""Each exercise's support module: what its public tests, graders and notebook share.

``exercises/support/sectionN/<topic>.py`` ships to learners with the stub.
It holds the exercise's oracles built from library calls (torch built-ins, tiktoken,
...), the inputs and data its tests and graders draw, and ``figure()``, the picture
of its notebook. It holds nothing that solves the exercise: a full reference
algorithm that only graders may use lives in the hidden tree,
``graders/sectionN/<topic>_oracle.py`` (:func:`load_oracle`).

Tests run with ``--import-mode=importlib``, so these files are not importable by
name: :func:`load_support` imports one by path, once per file, as
``llmkit_support.sectionN.<topic>``::

    support = load_support("2.3")    # in a public test or grader

The project root is the one holding the calling file (else the working directory).
A support module that builds on another exercise's loads it by module path,
``load_support("section7/flash_attention.py")``: that needs no catalog entry, so it
also works where the catalog holds one exercise only (a notebook's public checks, an
autograder bundle). :func:`support_files` lists the files a support module loaded,
which those places carry along. These modules run in the grader's process only: a
sandbox worker never imports them (the models graders send it are llmkit.toymodels').
"""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from pathlib import Path

from llmkit.catalog import EXERCISE_ID, Exercise, find_project_root, load_catalog

MODULE_PATH = re.compile(r"^section\d+/[A-Za-z_]\w*\.py$")  # a catalog `module`

_modules: dict[Path, types.ModuleType] = {}  # resolved file -> its module
_versions: dict[Path, tuple[int, int]] = {}  # resolved file -> (mtime_ns, size) when it was run
_loading: list[types.ModuleType] = []  # the support modules executing now, innermost last


class SupportError(Exception):
    """A support or oracle module is missing. The message names the file."""


def load_support(exercise: str | Exercise, root: str | Path | None = None) -> types.ModuleType:
    """The support module of ``exercise`` (an id, a catalog entry, or a module path such as
    ``section2/attention.py``) under ``root`` (default: the caller's project root)."""
    root = _root(root, sys._getframe(1))
    module = _module_path(exercise, root)
    return _load(root / "exercises" / "support" / module, f"llmkit_support.{_dotted(module)}")


def load_oracle(exercise: str | Exercise, root: str | Path | None = None) -> types.ModuleType:
    """The hidden oracle module of ``exercise``, ``graders/sectionN/<topic>_oracle.py``
    (graders only: it never ships to learners)."""
    root = _root(root, sys._getframe(1))
    module = _module_path(exercise, root)
    oracle = module.removesuffix(".py") + "_oracle.py"
    return _load(root / "graders" / oracle, f"llmkit_oracle.{_dotted(module)}")


def support_files(exercise: str | Exercise, root: str | Path | None = None) -> list[Path]:
    """The exercise's support file, then every support file it loaded (transitively)."""
    root = _root(root, sys._getframe(1))
    first = load_support(exercise, root)
    files, todo = [], [first]
    while todo:
        module = todo.pop(0)
        path = Path(module.__file__).resolve()
        if path not in files:
            files.append(path)
            todo += [_modules[p] for p in module.__llmkit_uses__]
    return files


def _root(root, caller) -> Path:
    if root is not None:
        return Path(root).resolve()
    where = caller.f_globals.get("__file__")
    return find_project_root(Path(where).parent if where else None)


def _module_path(exercise: str | Exercise, root: Path) -> str:
    if isinstance(exercise, Exercise):
        return exercise.module
    if EXERCISE_ID.match(exercise):
        return load_catalog(root).get(exercise).module
    if not MODULE_PATH.match(exercise):
        raise SupportError(
            f"{exercise!r} is neither an exercise id (2.3) nor a module path (section2/attention.py)"
        )
    return exercise


def _dotted(module: str) -> str:
    """``section2/attention.py`` -> ``section2.attention``."""
    return module.removesuffix(".py").replace("/", ".")


def _load(path: Path, name: str) -> types.ModuleType:
    path = path.resolve()
    if _loading:
        _loading[-1].__llmkit_uses__.append(path)  # a support module building on this one
    if not path.is_file():
        raise SupportError(f"{path} is missing (DESIGN.md: 'What every exercise ships')")
    stat = path.stat()
    module = _modules.get(path)
    if module is not None and _versions[path] == (stat.st_mtime_ns, stat.st_size):
        return module  # once per file, unless it changed since (an author editing it)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    module.__llmkit_uses__ = []
    sys.modules[name] = module  # dataclasses and pickle look classes up here
    _loading.append(module)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        _loading.pop()
    _modules[path], _versions[path] = module, (stat.st_mtime_ns, stat.st_size)
    return module
