"""Banned library shortcuts: a static scan of the learner's source plus a runtime trap.

A ban is a dotted name from the catalog, e.g.
``torch.nn.functional.scaled_dot_product_attention`` or ``torch.Tensor.softmax``.
The static scan flags any mention of the banned leaf name (``F.softmax``,
``x.softmax(...)``, ``from torch.nn.functional import softmax``,
``getattr(F, "softmax")``); the runtime trap replaces the real objects while a
test runs and raises when they are reached from learner code, however indirectly.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from llmkit.checks import CheckFailure


class BannedCallError(CheckFailure):
    """Learner code reached a banned library function at run time."""


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    name: str  # the banned dotted name
    source: str

    def __str__(self) -> str:
        return f"{Path(self.file).name} line {self.line}: {self.source.strip()}  (bans {self.name})"


def _leaves(banned: Iterable[str]) -> dict[str, str]:
    """Leaf name -> every banned dotted name that ends with it, e.g. softmax -> "torch.softmax / ..."."""
    out: dict[str, list[str]] = {}
    for name in banned:
        out.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    return {leaf: " / ".join(names) for leaf, names in out.items()}


def scan_source(source: str, filename: str, banned: Iterable[str]) -> list[Violation]:
    """Mentions of banned names in ``source``."""
    leaves = _leaves(banned)
    tree = ast.parse(source, filename)
    lines = source.splitlines()
    found: list[Violation] = []

    def flag(node: ast.AST, leaf: str) -> None:
        line = getattr(node, "lineno", 0)
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        found.append(Violation(filename, line, leaves[leaf], text))

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in leaves:
            flag(node, node.attr)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in leaves:
                    flag(node, alias.name)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "__import__")
        ):
            for arg in node.args[1:2] if node.func.id == "getattr" else node.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    leaf = arg.value.rsplit(".", 1)[-1]
                    if leaf in leaves:
                        flag(node, leaf)
    return sorted(found, key=lambda v: (v.file, v.line))


def scan_files(files: Iterable[str], banned: Iterable[str]) -> list[Violation]:
    banned = list(banned)
    out: list[Violation] = []
    for f in files:
        out.extend(scan_source(Path(f).read_text(encoding="utf-8"), f, banned))
    return out


def assert_no_banned_mentions(files: Iterable[str], banned: Iterable[str], exercise: str) -> None:
    """Static half of the ban: fail naming each offending line."""
    violations = scan_files(files, banned)
    if violations:
        listing = "\n  ".join(str(v) for v in violations)
        raise CheckFailure(
            f"exercise {exercise} must be written without these library shortcuts:\n  {listing}",
            hint="the point of the exercise is to write this computation yourself",
        )


def _resolve(dotted: str):
    """(owner, attribute name, current value) for a dotted name such as torch.Tensor.softmax."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            owner = obj
            for attr in parts[cut:-1]:
                owner = getattr(owner, attr)
            return owner, parts[-1], getattr(owner, parts[-1])
        except AttributeError:
            break
    raise ValueError(f"cannot resolve banned name {dotted!r}")


def _learner_frame(files: frozenset[str]):
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename in files:
            return frame
        frame = frame.f_back
    return None


@dataclass
class BanTrap:
    """Records banned calls made from learner files while installed."""

    files: frozenset[str]
    exercise: str
    calls: list[str] = field(default_factory=list)

    def guard(self, name: str, original):
        trap = self

        def guarded(*args, **kwargs):
            frame = _learner_frame(trap.files)
            if frame is not None:
                where = f"{Path(frame.f_code.co_filename).name} line {frame.f_lineno}"
                trap.calls.append(f"{name} ({where})")
                raise BannedCallError(
                    f"exercise {trap.exercise} bans {name}, and your code called it ({where})",
                    hint="write the computation yourself instead of calling the library",
                )
            return original(*args, **kwargs)

        guarded.__wrapped__ = original
        guarded.__name__ = getattr(original, "__name__", name)
        return guarded


@contextlib.contextmanager
def trap_banned_calls(banned: Iterable[str], files: Iterable[str], exercise: str) -> Iterator[BanTrap]:
    """Replace each banned object with a guard for the duration of the block.

    Classes are guarded at ``__init__`` so ``isinstance`` keeps working for
    library code and grader oracles, which may still use them.
    """
    trap = BanTrap(frozenset(files), exercise)
    _missing = object()
    restore: list[tuple[object, str, object]] = []
    try:
        for name in banned:
            owner, attr, value = _resolve(name)
            if inspect.isclass(value):
                owner, attr, value = value, "__init__", value.__dict__.get("__init__", value.__init__)
            restore.append((owner, attr, owner.__dict__.get(attr, _missing)))
            setattr(owner, attr, trap.guard(name, value))
        yield trap
    finally:
        for owner, attr, value in reversed(restore):
            if value is _missing:
                delattr(owner, attr)
            else:
                setattr(owner, attr, value)
