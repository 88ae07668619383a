"""The curriculum catalog: sections and exercises, read from ``catalog.toml``.

Everything that lists exercises (CLI, README tables, pytest summary, reports,
author check) goes through :func:`load_catalog`; nothing lists them by hand.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from llmkit.assets import ASSETS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CATALOG_FILE = "catalog.toml"
DIFFICULTIES = ("basic", "intermediate", "advanced")
TRACKS = ("beginner", "advanced")
EXERCISE_ID = re.compile(r"^(?P<section>\d+)\.(?P<number>\d+)(?P<part>[a-z]?)$")  # 2.3, 1.2a
REQUIREMENT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")  # a pip project name
MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class CatalogError(Exception):
    """The catalog file is missing or malformed."""


@dataclass(frozen=True)
class Resource:
    title: str
    url: str


@dataclass(frozen=True)
class Exercise:
    id: str
    module: str  # path relative to an implementation root, e.g. "section2/attention.py"
    title: str
    difficulty: str
    track: str
    points: int
    summary: str = ""
    hints: tuple[str, ...] = ()
    resources: tuple[Resource, ...] = ()
    banned: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()  # extra pip requirements of its tests, e.g. ("tiktoken",)
    assets: tuple[str, ...] = ()  # cached files its tests read (llmkit.assets), e.g. ("gpt2",)
    preload: tuple[str, ...] = ()  # modules a sandbox worker imports before its rules apply

    @property
    def section(self) -> int:
        return int(EXERCISE_ID.match(self.id)["section"])

    @property
    def sort_key(self) -> tuple[int, int, str]:
        m = EXERCISE_ID.match(self.id)
        return int(m["section"]), int(m["number"]), m["part"]

    @property
    def topic(self) -> str:
        """The module's stem: ``attention`` for ``section2/attention.py``."""
        return Path(self.module).stem

    @property
    def section_dir(self) -> str:
        return str(Path(self.module).parent)

    @property
    def public_test(self) -> str:
        """Public test file, relative to the project root."""
        return f"exercises/{self.section_dir}/test_{self.topic}.py"

    @property
    def grader(self) -> str:
        """Hidden grader file, relative to the project root."""
        return f"graders/{self.section_dir}/test_{self.topic}.py"

    @property
    def support(self) -> str:
        """Support module (oracles, inputs, figure; ships to learners), relative to the project root."""
        return f"exercises/support/{self.section_dir}/{self.topic}.py"

    @property
    def oracle(self) -> str:
        """Hidden oracle module (optional; graders only), relative to the project root."""
        return f"graders/{self.section_dir}/{self.topic}_oracle.py"

    @property
    def mutants_glob(self) -> str:
        return f"graders/mutants/{self.section_dir}/{self.topic}__*.py"


@dataclass(frozen=True)
class Section:
    number: int
    title: str
    planned: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    root: Path
    sections: tuple[Section, ...]
    exercises: tuple[Exercise, ...] = field(default_factory=tuple)

    def get(self, exercise_id: str) -> Exercise:
        for ex in self.exercises:
            if ex.id == exercise_id:
                return ex
        known = ", ".join(ex.id for ex in self.exercises) or "none"
        raise CatalogError(f"no exercise {exercise_id!r} in the catalog (known: {known})")

    def by_module(self, module: str) -> Exercise | None:
        for ex in self.exercises:
            if ex.module == module:
                return ex
        return None

    def in_section(self, number: int) -> list[Exercise]:
        return [ex for ex in self.exercises if ex.section == number]


def find_project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest directory at or above ``start`` that holds ``catalog.toml``."""
    env = os.environ.get("LLMKIT_ROOT")
    if env and start is None:
        return Path(env).resolve()
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CATALOG_FILE).is_file():
            return candidate
    raise CatalogError(
        f"no {CATALOG_FILE} found in {here} or any parent directory; "
        "run llmkit from inside the kit's checkout"
    )


def _require(table: dict, key: str, where: str, kind: type):
    if key not in table:
        raise CatalogError(f"{where}: missing required field {key!r}")
    value = table[key]
    if not isinstance(value, kind):
        raise CatalogError(f"{where}: {key!r} should be {kind.__name__}, got {value!r}")
    return value


def _names(table: dict, key: str, where: str, ok: Callable[[str], object], what: str) -> tuple[str, ...]:
    """An optional list of strings, each one ``ok``."""
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{where}: {key!r} should be a list of strings, got {value!r}")
    for v in value:
        if not ok(v):
            raise CatalogError(f"{where}: {key!r} holds {v!r}, which is not {what}")
    return tuple(value)


def _parse_exercise(table: dict, index: int) -> Exercise:
    where = f"{CATALOG_FILE}: exercise #{index + 1}"
    ex_id = _require(table, "id", where, str)
    where = f"{CATALOG_FILE}: exercise {ex_id}"
    if not EXERCISE_ID.match(ex_id):
        raise CatalogError(f"{where}: id should look like 2.3 or 1.2a")
    difficulty = _require(table, "difficulty", where, str)
    track = _require(table, "track", where, str)
    if difficulty not in DIFFICULTIES:
        raise CatalogError(f"{where}: difficulty {difficulty!r} is not one of {DIFFICULTIES}")
    if track not in TRACKS:
        raise CatalogError(f"{where}: track {track!r} is not one of {TRACKS}")
    module = _require(table, "module", where, str)
    if not module.startswith(f"section{EXERCISE_ID.match(ex_id)['section']}/") or not module.endswith(".py"):
        raise CatalogError(f"{where}: module {module!r} should be section<N>/<topic>.py")
    resources = tuple(
        Resource(title=_require(r, "title", where, str), url=_require(r, "url", where, str))
        for r in table.get("resources", [])
    )
    return Exercise(
        id=ex_id,
        module=module,
        title=_require(table, "title", where, str),
        difficulty=difficulty,
        track=track,
        points=_require(table, "points", where, int),
        summary=table.get("summary", ""),
        hints=tuple(table.get("hints", [])),
        resources=resources,
        banned=tuple(table.get("banned", [])),
        needs=_names(table, "needs", where, REQUIREMENT.match, "a pip project name such as tiktoken"),
        assets=_names(table, "assets", where, ASSETS.__contains__, f"a known asset ({', '.join(ASSETS)})"),
        preload=_names(table, "preload", where, MODULE_NAME.match, "a module name such as triton.language"),
    )


@lru_cache(maxsize=8)
def _load(root: Path) -> Catalog:
    path = root / CATALOG_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"{path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path} is not valid TOML: {exc}") from None
    sections = tuple(
        Section(
            number=_require(s, "number", f"{CATALOG_FILE}: section", int),
            title=_require(s, "title", f"{CATALOG_FILE}: section", str),
            planned=tuple(s.get("planned", [])),
        )
        for s in data.get("section", [])
    )
    exercises = tuple(
        sorted(
            (_parse_exercise(t, i) for i, t in enumerate(data.get("exercise", []))), key=lambda e: e.sort_key
        )
    )
    ids = [ex.id for ex in exercises]
    if len(set(ids)) != len(ids):
        raise CatalogError(f"{CATALOG_FILE}: duplicate exercise ids in {ids}")
    return Catalog(root=root, sections=sections, exercises=exercises)


def load_catalog(root: str | os.PathLike | None = None) -> Catalog:
    return _load(find_project_root(root))


def reload_catalog(root: str | os.PathLike | None = None) -> Catalog:
    """The catalog as the file says now (after an edit in this process)."""
    _load.cache_clear()
    return load_catalog(root)


def assets_in_use(root: str | os.PathLike | None = None) -> list[str]:
    """The assets the catalog's exercises list; outside a kit checkout, every known asset."""
    try:
        return sorted({name for ex in load_catalog(root).exercises for name in ex.assets})
    except CatalogError:
        return sorted(ASSETS)
