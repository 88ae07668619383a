"""Implementation roots: where the code under test comes from.

Tests never import ``exercises.…``. They ask for an exercise's module and get
it from the selected root:

* ``exercises`` (default) — the learner's working tree;
* ``solutions`` — the reference implementations;
* a directory mirroring ``exercises/`` — e.g. a learner's submission;
* a mutant file ``graders/mutants/sectionN/<topic>__<bug>.py`` — the reference
  module with the mutant's definitions executed on top of it, so a mutant
  holds only the lines that carry its bug.
"""

from __future__ import annotations

import ast
import re
import sys
import tempfile
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

from llmkit.catalog import Exercise, find_project_root, load_catalog

MUTANT_NAME = re.compile(r"^(?P<topic>[a-z0-9_]+?)__(?P<bug>[a-z0-9_]+)\.py$")


class ImplementationError(Exception):
    """The module under test cannot be found or imported. The message is for the learner."""


@dataclass(frozen=True)
class ImplementationRoot:
    kind: str  # "exercises" | "solutions" | "directory" | "mutant"
    path: Path  # the directory modules are read from (the base, for a mutant)
    mutant: Path | None = None
    mutant_module: str | None = None  # e.g. "section2/attention.py"
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def label(self) -> str:
        if self.kind == "mutant":
            return f"mutant {self.mutant.name}"
        if self.kind == "directory":
            return str(self.path)
        return f"{self.kind}/"

    @property
    def short_label(self) -> str:
        """The label as a test id parameter: ``solutions``, ``attention__no_scale``."""
        if self.kind == "mutant":
            return self.mutant.stem
        return self.path.name if self.kind == "directory" else self.kind

    def files_for(self, exercise: Exercise) -> list[Path]:
        """Source files whose code runs as the exercise's module, in execution order."""
        files = [self.path / exercise.module]
        if self.kind == "mutant" and exercise.module == self.mutant_module:
            files.append(self.mutant)
        return files

    def source_files(self, exercise: Exercise) -> list[Path]:
        """:meth:`files_for`, with a mutant's ``REFERENCE_PATCH`` applied to the reference.
        A missing file is an :class:`ImplementationError` naming the module, not the path
        (a grader's temporary directory means nothing to the learner)."""
        files = self.files_for(exercise)
        for path in files:
            if not path.is_file():
                raise ImplementationError(
                    f"exercise {exercise.id}: {exercise.module} is missing from {self.short_label}/ "
                    f"(this exercise's tests need that file)"
                )
        if len(files) == 2:  # a mutant: it may patch the reference's text before it runs
            files[0] = _patched_reference(files[0], files[1], exercise)
        return files

    def loaded(self, exercise: Exercise) -> types.ModuleType | None:
        """The module if :meth:`load` already imported it, else None."""
        return self._cache.get(exercise.id)

    def load(self, exercise: Exercise) -> types.ModuleType:
        """Import the exercise's module from this root (cached per root)."""
        if exercise.id not in self._cache:
            self._cache[exercise.id] = _import_files(self, exercise)
        return self._cache[exercise.id]


def resolve_root(spec: str | None, project_root: Path) -> ImplementationRoot:
    """Turn an ``--impl`` value into an :class:`ImplementationRoot`."""
    spec = spec or "exercises"
    if spec in ("exercises", "solutions"):
        return ImplementationRoot(kind=spec, path=project_root / spec)
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve()
    if path.is_dir():
        return ImplementationRoot(kind="directory", path=path)
    if path.is_file() and path.suffix == ".py":
        match = MUTANT_NAME.match(path.name)
        section = path.parent.name
        if not match or not re.fullmatch(r"section\d+", section):
            raise ImplementationError(
                f"--impl {spec}: a mutant file must be named sectionN/<topic>__<bug>.py"
            )
        return ImplementationRoot(
            kind="mutant",
            path=project_root / "solutions",
            mutant=path,
            mutant_module=f"{section}/{match['topic']}.py",
        )
    raise ImplementationError(
        f"--impl {spec}: expected 'exercises', 'solutions', a directory laid out like "
        "exercises/, or a mutant .py file, and found none of these"
    )


def load_exercise_module(exercise_id: str, impl: str | None = None, project_root: Path | None = None):
    """The module of exercise ``exercise_id`` from ``impl`` (default: your ``exercises/``
    tree), for code that builds on earlier exercises outside the tests: a capstone script
    or a notebook cell, e.g. ``load_exercise_module("2.1").train_bpe``. An unfinished
    exercise still imports: its functions raise NotImplementedError when called."""
    project_root = Path(project_root) if project_root else find_project_root()
    exercise = load_catalog(project_root).get(exercise_id)
    return resolve_root(impl, project_root).load(exercise)


def _read_source(path: Path, exercise_id: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ImplementationError(
            f"exercise {exercise_id}: {path.parent.name}/{path.name} is missing from {path.parent.parent}"
        ) from None
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark is legal UTF-8, as Python's import agrees
    except UnicodeDecodeError as exc:
        raise ImplementationError(
            f"exercise {exercise_id}: {path.name} is not valid UTF-8 (byte {exc.start}); "
            "save the file as UTF-8"
        ) from None


def _import_files(root: ImplementationRoot, exercise: Exercise) -> types.ModuleType:
    files = root.source_files(exercise)
    name = f"llmkit_impl_{root.kind}_{abs(hash(str(files))):x}.{exercise.section_dir}.{exercise.topic}"
    return load_module_from_files(files, exercise.id, name)


def load_module_from_files(files: list[Path], exercise_id: str, name: str) -> types.ModuleType:
    """Execute ``files`` in order in one new module named ``name`` (also used by the
    sandbox worker). Any failure becomes an :class:`ImplementationError` for the learner."""
    files = [Path(f) for f in files]
    module = types.ModuleType(name)
    module.__file__ = str(files[-1])
    module.__llmkit_files__ = tuple(str(f) for f in files)
    sys.modules[name] = module
    try:
        for path in files:
            source = _read_source(path, exercise_id)
            try:
                code = compile(source, str(path), "exec")
            except (SyntaxError, ValueError) as exc:  # ValueError: NUL bytes in the source
                line = getattr(exc, "lineno", None) or "?"
                msg = getattr(exc, "msg", None) or str(exc)
                raise ImplementationError(
                    f"exercise {exercise_id}: {path.name} line {line}: SyntaxError: {msg}"
                ) from None
            try:
                exec(code, module.__dict__)
            except (ImplementationError, KeyboardInterrupt):
                raise
            except BaseException as exc:  # import-time crash, sys.exit, ...
                where = _last_frame_in(exc, files)
                raise ImplementationError(
                    f"exercise {exercise_id}: importing {path.name} raised {type(exc).__name__}: {exc}{where}"
                ) from None
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


PATCH_NAME = "REFERENCE_PATCH"
_patched_dir: tempfile.TemporaryDirectory | None = None


def _patched_reference(reference: Path, mutant: Path, exercise: Exercise) -> Path:
    """The reference file, or a copy with the mutant's ``REFERENCE_PATCH`` applied.

    ``REFERENCE_PATCH = [(old, new), ...]`` replaces text that occurs exactly once
    in the reference. It serves code that cannot be overridden piece by piece, such
    as a ``@triton.jit`` kernel (Triton compiles a kernel from its source file). The
    copy is a real file, so source inspection and child processes see the mutant.
    """
    source = _read_source(mutant, exercise.id)
    patches = None
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [PATCH_NAME]:
            patches = ast.literal_eval(node.value)
    if not patches:
        return reference
    text = _read_source(reference, exercise.id)
    for old, new in patches:
        if text.count(old) != 1:
            raise ImplementationError(
                f"{mutant.name}: {PATCH_NAME} text occurs {text.count(old)} times in the reference "
                f"(it must occur exactly once): {old[:80]!r}"
            )
        text = text.replace(old, new)
    global _patched_dir
    if _patched_dir is None:
        _patched_dir = tempfile.TemporaryDirectory(prefix="llmkit-mutants-")
    patched = Path(_patched_dir.name) / exercise.section_dir / f"{mutant.stem}.reference.py"
    patched.parent.mkdir(parents=True, exist_ok=True)
    patched.write_text(text, encoding="utf-8")
    return patched


def _last_frame_in(exc: BaseException, files: list[Path]) -> str:
    wanted = {str(f) for f in files}
    lines = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in wanted]
    if not lines:
        return ""
    frame = lines[-1]
    return f" (line {frame.lineno}: {frame.line})"


def module_files(module: types.ModuleType) -> tuple[str, ...]:
    """The source files of a module loaded by :meth:`ImplementationRoot.load`, in the
    order they run (for a mutant: the reference, then the mutant)."""
    return tuple(getattr(module, "__llmkit_files__", ()))
