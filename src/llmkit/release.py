"""``llmkit release OUT``: the learner edition of the kit, a directory ready to ``git init``.

It holds, for the chosen exercises, the stubs, public tests, support modules (and the
ones they build on) and section READMEs; a ``catalog.toml`` listing only those
exercises; the engine without the author's and instructor's modules
(:data:`INSTRUCTOR_MODULES`: so ``llmkit`` there offers list, doctor, status, check,
hint, show, watch and fetch-assets only); a ``pyproject.toml`` whose plain ``pytest``
runs the public tests; a learner README with the two set-up commands; and a GitHub
Classroom workflow (``.github/workflows/classroom.yml``) that runs each exercise's
public tests on every push, worth the exercise's points.

It never holds ``solutions/``, ``graders/`` (hidden oracles and mutants included) or the
kit's own ``tests/`` (the cheating submissions); ``tests/test_release.py`` searches the
whole edition for every non-trivial line of every reference solution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from llmkit.catalog import TRACKS, Catalog, CatalogError, Exercise
from llmkit.docs import curriculum_table

INSTRUCTOR_MODULES = (
    "authoring.py",
    "scaffold.py",
    "docs.py",
    "release.py",
    "grading.py",
    "shards.py",
    "gradescope_bundle.py",
    "gradescope_memory.py",
    "reports",
    "nbgrader",
)
TORCH_PIN = "torch==2.13.0"
CLASSROOM_WORKFLOW = ".github/workflows/classroom.yml"


def install_extras(exercises: list[Exercise]) -> str:
    """The kit's extras a learner installs: dev (the tests' libraries), and gpu (Triton,
    which also runs on the CPU through its interpreter) when an exercise uses Triton."""
    triton = any("triton" in (*ex.needs, *ex.preload) for ex in exercises)
    return "dev,gpu" if triton else "dev"


def setup_command(exercises: list[Exercise]) -> str:
    return (
        f"python3 -m venv .venv && . .venv/bin/activate && pip install {TORCH_PIN} && "
        f'pip install -e ".[{install_extras(exercises)}]" && llmkit fetch-assets'
    )


class ReleaseError(Exception):
    """The selection or the output directory cannot be used; the message says which."""


@dataclass
class Release:
    path: Path
    exercises: list[Exercise]
    files: list[Path]  # relative to path


def select_exercises(
    catalog: Catalog, sections: list[str] | None, ids: list[str] | None, track: str | None
) -> list[Exercise]:
    """The catalog's exercises, narrowed by section numbers, ids and track (each optional)."""
    chosen = list(catalog.exercises)
    if sections:
        numbers = {n.strip() for spec in sections for n in spec.split(",") if n.strip()}
        known = {str(ex.section) for ex in catalog.exercises}
        unknown = sorted(numbers - known)
        if unknown:
            have = ", ".join(sorted(known))
            raise ReleaseError(f"no exercises in section(s) {', '.join(unknown)}; sections with some: {have}")
        chosen = [ex for ex in chosen if str(ex.section) in numbers]
    if ids:
        try:
            wanted = {catalog.get(i.strip()).id for spec in ids for i in spec.split(",") if i.strip()}
        except CatalogError as exc:
            raise ReleaseError(str(exc)) from None
        chosen = [ex for ex in chosen if ex.id in wanted]
    if track:
        if track not in TRACKS:
            raise ReleaseError(f"unknown track {track!r}; choose one of {', '.join(TRACKS)}")
        chosen = [ex for ex in chosen if ex.track == track]
    if not chosen:
        raise ReleaseError("the selection holds no exercise")
    return chosen


def build_release(catalog: Catalog, exercises: list[Exercise], out: Path) -> Release:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReleaseError(f"{out} exists and is not an empty directory")
    root = catalog.root
    files: dict[str, bytes] = {}  # relative path -> content
    for ex in exercises:
        for rel in (f"exercises/{ex.module}", ex.public_test):
            files[rel] = (root / rel).read_bytes()
        for rel in _support_closure(catalog, ex.support):
            files[rel] = (root / rel).read_bytes()
    for section in sorted({ex.section for ex in exercises}):
        readme = f"exercises/section{section}/README.md"
        if (root / readme).is_file():
            files[readme] = (root / readme).read_bytes()
    engine = root / "src" / "llmkit"
    for path in sorted(engine.rglob("*")):
        rel = path.relative_to(engine)
        if path.is_file() and "__pycache__" not in rel.parts and rel.parts[0] not in INSTRUCTOR_MODULES:
            files[f"src/llmkit/{rel.as_posix()}"] = path.read_bytes()
    subset = _subset(catalog, exercises)
    files["catalog.toml"] = learner_catalog((root / "catalog.toml").read_text("utf-8"), exercises).encode()
    files["pyproject.toml"] = learner_pyproject((root / "pyproject.toml").read_text("utf-8")).encode()
    files["README.md"] = learner_readme(subset).encode()
    files[CLASSROOM_WORKFLOW] = classroom_workflow(exercises).encode()
    files[".gitignore"] = b".venv/\n__pycache__/\n*.egg-info/\n.pytest_cache/\n.hypothesis/\n.llmkit/\n"
    for rel, data in sorted(files.items()):
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return Release(out, exercises, [Path(rel) for rel in sorted(files)])


_LOADS = re.compile(r"""load_support\(\s*["']([^"']+)["']""")


def _support_closure(catalog: Catalog, support: str) -> list[str]:
    """``support`` and the support modules it builds on (``load_support("section7/...")``
    or ``load_support("7.1")`` in its text), read without running them."""
    found, todo = [], [support]
    while todo:
        rel = todo.pop()
        path = catalog.root / rel
        if rel in found or not path.is_file():
            continue
        found.append(rel)
        for target in _LOADS.findall(path.read_text("utf-8")):
            module = target if target.endswith(".py") else catalog.get(target).module
            todo.append(f"exercises/support/{module}")
    return found


def _subset(catalog: Catalog, exercises: list[Exercise]) -> Catalog:
    """``catalog`` with only ``exercises`` and their sections (no planned entries)."""
    numbers = {ex.section for ex in exercises}
    sections = tuple(replace(s, planned=()) for s in catalog.sections if s.number in numbers)
    return replace(catalog, sections=sections, exercises=tuple(exercises))


_TABLE = re.compile(r"^\[\[(section|exercise)\]\]\s*$", re.M)
_ID = re.compile(r'^id\s*=\s*"([^"]+)"', re.M)


def learner_catalog(text: str, exercises: list[Exercise]) -> str:
    """catalog.toml with only the chosen exercises' tables (the file's comments and the
    sections kept as written)."""
    keep = {ex.id for ex in exercises}
    starts = [m.start() for m in _TABLE.finditer(text)] + [len(text)]
    parts = [text[: starts[0]]]
    for begin, end in zip(starts, starts[1:]):
        chunk = text[begin:end]
        if chunk.startswith("[[exercise]]"):
            found = _ID.search(chunk)
            if not found or found[1] not in keep:
                continue
        parts.append(chunk)
    return "".join(parts)


def learner_pyproject(text: str) -> str:
    """The kit's pyproject.toml, without the instructor extra, with ``pytest`` running the
    public tests."""
    text = re.sub(r"^instructor = \[.*\].*\n", "", text, flags=re.M)
    text = text.replace('testpaths = ["tests"]', 'testpaths = ["exercises"]')
    text = re.sub(r"\n\[tool\.llmkit\.authoring\]\n(?:[^\[].*\n|\n)*", "\n", text)
    return text


def learner_readme(catalog: Catalog) -> str:
    total = sum(ex.points for ex in catalog.exercises)
    return f"""# LLM Learning Path: exercises

Hands-on exercises for learning how LLMs work from the inside. Each exercise is a stub
module in `exercises/sectionN/<topic>.py`: replace every `raise NotImplementedError`,
and the public tests beside it say, in plain words, what is still wrong and which
known mistake your output looks like. Each section's README explains why the topic
matters, how it connects to the rest and where to read more. {len(catalog.exercises)} exercises,
{total} points.

{curriculum_table(catalog)}

## Set-up (two commands)

With Python >= 3.10, from this directory (the first installs torch's CPU build first, so
nothing pulls a multi-gigabyte CUDA build; then the kit and the tests' libraries):

```bash
{setup_command(list(catalog.exercises))}
pytest
```

`pytest` runs every public test: at first every exercise reports "not started". Each
later session starts with `. .venv/bin/activate`.

## Working on an exercise

```bash
llmkit list                    # the exercises, their difficulty and track
llmkit watch                   # re-run the tests on every save, then move on to the next one
pytest exercises/section2      # check a section: failures name the likely mistake
llmkit check 2.3               # one exercise's public tests
llmkit show 2.3                # a picture of your code at work, as a PNG
llmkit hint 2.3                # progressive hints: one more each time
llmkit status                  # done / in progress / not started
llmkit doctor                  # this machine: Python, torch build, GPU, Triton, assets
```

Every run prints its random seed; `--seed N` replays it exactly. Your instructor grades
your modules with hidden tests that check more cases (and, for some exercises, speed):
passing the public tests is necessary, not sufficient.

## Submitting

Commit and push. On GitHub Classroom every push runs the public tests
(`{CLASSROOM_WORKFLOW}`) and shows, per exercise, whether they pass.
"""


def classroom_workflow(exercises: list[Exercise]) -> str:
    """A GitHub Classroom autograding workflow: one command grader per exercise (its public
    tests, worth its points), then the reporter that hands the scores to Classroom."""
    steps, runners = [], []
    for ex in exercises:
        runner = "ex-" + ex.id.replace(".", "-").lower()
        runners.append(runner)
        name = f"{ex.id} {ex.title}".replace('"', "'")
        steps.append(
            f"""      - name: "{name}"
        id: {runner}
        uses: classroom-resources/autograding-command-grader@v1
        with:
          test-name: "{name}"
          setup-command: ""
          command: "pytest -q {ex.public_test}"
          timeout: 10
          max-score: {ex.points}
"""
        )
    env = "".join(f'          {r.upper()}_RESULTS: "${{{{steps.{r}.outputs.result}}}}"\n' for r in runners)
    return f"""# GitHub Classroom autograding (written by llmkit release): each exercise's public tests,
# worth its points. The hidden graders are run by the instructor (llmkit grade).
name: Autograding Tests
on: [push, repository_dispatch]
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Set up
        run: |
          pip install {TORCH_PIN} --index-url https://download.pytorch.org/whl/cpu
          pip install -e ".[{install_extras(exercises)}]"
          llmkit fetch-assets
{"".join(steps)}      - name: Autograding Reporter
        uses: classroom-resources/autograding-grading-reporter@v1
        env:
{env}        with:
          runners: {",".join(runners)}
"""
