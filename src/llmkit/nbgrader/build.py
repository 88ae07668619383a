"""Build an nbgrader course from the kit's sources: ``llmkit nbgrader build COURSE_DIR``.

Layout written::

    COURSE_DIR/nbgrader_config.py              course settings; points test cells at this kit
    COURSE_DIR/source/section<N>/<topic>.ipynb  one assignment per section, one notebook per exercise

Only notebooks go into ``source/``: nbgrader copies every other file there to the
release unstripped, so figures are embedded as attachments and the graders stay in
the kit, found at grading time through ``nbgrader_config.py`` (see
:mod:`llmkit.nbgrader.runtime`). A notebook's cells, top to bottom:

1. the exercise's header (catalog), a figure, and its narrative (section README);
2. a read-only set-up cell that loads :mod:`llmkit.nbgrader.runtime`;
3. the answer cell: ``%%llmkit_module sectionN/<topic>.py`` and the stub merged with
   the reference between ``### BEGIN SOLUTION`` / ``### END SOLUTION``
   (:mod:`llmkit.nbgrader.merge`), so the release holds the stub;
4. read-only cells with the exercise's support module(s) (``exercises/support/sectionN/<topic>.py``
   and any it loads) and the public test file;
5. a locked test cell worth the grader tests' points: the public checks (visible),
   the hidden graders between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``;
   grader tests that need a GPU get a test cell of their own;
6. hints and resources.

The test cells' points are read from the graders (``@pytest.mark.points``, collected by
:mod:`llmkit.nbgrader.collect`) and must add up to the catalog's points.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from llmkit.catalog import Catalog, CatalogError, Exercise
from llmkit.compute import configure_compute
from llmkit.impl import resolve_root
from llmkit.nbgrader.merge import MergeError, answer_cell
from llmkit.nbgrader.narrative import exercise_narrative
from llmkit.support import SupportError, load_support, support_files

CONFIG_FILE = "nbgrader_config.py"
CONFIG_MARKER = "# Written by `llmkit nbgrader build`"
KEEP_MARKER = "# --- your settings (a rebuild keeps everything below this line) ---"
CELL_TIMEOUT_S = 600  # nbgrader's per-cell limit; a test cell grades one exercise in a child process


class BuildError(ValueError):
    """The course cannot be built. The message says why and what to do."""


@dataclass
class GraderTest:
    exercise: str
    name: str
    points: float
    gpu: bool


@dataclass
class BuiltNotebook:
    exercise: Exercise
    path: Path
    points: float  # graded on any machine
    gpu_points: float  # graded on a GPU machine only


@dataclass
class Course:
    root: Path
    notebooks: list[BuiltNotebook] = field(default_factory=list)

    @property
    def assignments(self) -> list[str]:
        return sorted({nb.path.parent.name for nb in self.notebooks})


# --- selection and the course directory ---------------------------------------


def select_exercises(
    catalog: Catalog, sections: list[int] | None = None, exercise_ids: list[str] | None = None
) -> list[Exercise]:
    """The catalog's exercises in the given sections and/or with the given ids (default: all)."""
    known = {s.number for s in catalog.sections}
    with_exercises = sorted({ex.section for ex in catalog.exercises})
    for number in sections or []:
        if number not in known:
            raise BuildError(f"there is no section {number} (sections: {', '.join(map(str, sorted(known)))})")
        if number not in with_exercises:
            raise BuildError(
                f"section {number} has no exercises yet (sections with exercises: "
                f"{', '.join(map(str, with_exercises))})"
            )
    chosen = list(catalog.exercises)
    if sections:
        chosen = [ex for ex in chosen if ex.section in sections]
    if exercise_ids:
        try:
            wanted = {catalog.get(i).id for i in exercise_ids}
        except CatalogError as exc:
            raise BuildError(str(exc)) from None
        chosen = [ex for ex in chosen if ex.id in wanted]
        if not chosen:
            raise BuildError("none of the chosen exercises is in the chosen sections")
    if not chosen:
        raise BuildError("the catalog has no exercises to build")
    return chosen


def check_course_dir(course_dir: Path) -> None:
    """A new or empty directory, or a course this command built before."""
    if not course_dir.exists():
        return
    if not course_dir.is_dir():
        raise BuildError(f"{course_dir} exists and is not a directory")
    if not any(course_dir.iterdir()):
        return
    config = course_dir / CONFIG_FILE
    if not config.is_file():
        raise BuildError(
            f"{course_dir} is not empty and is not an nbgrader course (no {CONFIG_FILE}); "
            "give a new or empty directory"
        )
    if CONFIG_MARKER not in config.read_text(encoding="utf-8", errors="replace"):
        raise BuildError(
            f"{course_dir} is an nbgrader course that `llmkit nbgrader build` did not write "
            f"(its {CONFIG_FILE} lacks the llmkit header); give a new or empty directory"
        )


def config_text(catalog: Catalog, previous: str | None = None) -> str:
    from llmkit.nbgrader.runtime import KIT_ENV

    kept = ""
    if previous and KEEP_MARKER in previous:
        kept = previous.split(KEEP_MARKER, 1)[1].lstrip("\n")
    return f'''{CONFIG_MARKER} for the llmkit checkout below.
# A rebuild rewrites this file down to the marked line at the end.
import os

c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.course_id = "llmkit"

# The test cells grade with this checkout's catalog and hidden graders (graders/), which
# never travel with the notebooks. An environment variable of the same name overrides it.
os.environ.setdefault("{KIT_ENV}", {json.dumps(str(catalog.root))})

# A solution region of an answer cell becomes this comment in the release: the code around
# it is the exercise's stub, so functions there still raise NotImplementedError.
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE"}}

# One test cell grades one exercise in a child process.
c.Execute.timeout = {CELL_TIMEOUT_S}

# Only notebooks are copied between source/, release/ and submissions: any other file
# would reach learners unstripped.
c.CourseDirectory.include = ["*.ipynb"]

{KEEP_MARKER}
{kept}'''


# --- grader points -------------------------------------------------------------


def collect_grader_tests(catalog: Catalog, exercises: list[Exercise]) -> dict[str, list[GraderTest]]:
    """Each exercise's hidden grader tests with their points, read by pytest's collection."""
    missing = [ex.grader for ex in exercises if not (catalog.root / ex.grader).is_file()]
    if missing:
        raise BuildError(f"grader files missing from {catalog.root}: {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="llmkit-collect-") as tmp:
        out = Path(tmp) / "tests.json"
        cmd = [
            sys.executable, "-m", "pytest", *[ex.grader for ex in exercises],
            "--collect-only", "-q", "--rootdir", str(catalog.root), "--import-mode=importlib",
            "-p", "no:cacheprovider", "-p", "llmkit.nbgrader.collect", "--llmkit-collect-json", str(out),
        ]  # fmt: skip
        proc = subprocess.run(cmd, cwd=catalog.root, capture_output=True, text=True, errors="replace")
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise BuildError(
                f"could not collect the hidden graders (pytest exit code {proc.returncode}):\n{tail}"
            )
        entries = json.loads(out.read_text(encoding="utf-8"))
    tests: dict[str, list[GraderTest]] = {ex.id: [] for ex in exercises}
    for entry in entries:
        if entry["exercise"] in tests:
            tests[entry["exercise"]].append(GraderTest(**entry))
    for ex in exercises:
        total = sum(t.points for t in tests[ex.id])
        if total != ex.points:
            raise BuildError(
                f"the graders of {ex.id} ({ex.grader}) are worth {total:g} points but the catalog says "
                f"{ex.points}; fix one of them (is every grader module importable here?)"
            )
    return tests


# --- notebooks -------------------------------------------------------------------


def _nbgrader_meta(grade_id: str, *, grade=False, solution=False, locked=False, points=None) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BuildError(f"{what} is missing: {path}") from None


def _test_cell_source(ex: Exercise, points: float, gpu_names: list[str]) -> str:
    exclude = f", exclude={gpu_names!r}" if gpu_names else ""
    return (
        f"# Exercise {ex.id} ({points:g} points). Runs the public checks above on your code.\n"
        "# When your notebook is graded, the hidden graders run here instead and give\n"
        "# each grader test's points (partial credit).\n"
        "import llmkit.nbgrader.runtime as llmkit_nb\n"
        "\n"
        "### BEGIN HIDDEN TESTS\n"
        "llmkit_nb.start_grading()\n"
        "### END HIDDEN TESTS\n"
        f'llmkit_nb.public_checks("{ex.id}")\n'
        "### BEGIN HIDDEN TESTS\n"
        "import llmkit.nbgrader.runtime as _llmkit_grading\n"
        "\n"
        f'_llmkit_grading.grade("{ex.id}", points={points:g}{exclude})\n'
        "### END HIDDEN TESTS"
    )


def _gpu_cell_source(ex: Exercise, points: float, gpu_names: list[str]) -> str:
    return (
        f"# Exercise {ex.id}: {points:g} more points, graded on a machine with a CUDA GPU only.\n"
        '# Graded without one, this cell reports "not graded: no GPU" and scores 0.\n'
        "### BEGIN HIDDEN TESTS\n"
        "import llmkit.nbgrader.runtime as _llmkit_grading\n"
        "\n"
        f'_llmkit_grading.grade("{ex.id}", points={points:g}, tests={gpu_names!r})\n'
        "### END HIDDEN TESTS"
    )


def _guide(ex: Exercise, points: float, gpu_points: float) -> str:
    gpu = (
        f" {gpu_points:g} of the {ex.points} points come from grader tests that need a CUDA GPU; "
        "they are graded in a test cell of their own, on a machine with one."
        if gpu_points
        else ""
    )
    banned = (
        "\n\n**Not allowed here** (a static scan and a runtime trap enforce it): "
        + ", ".join(f"`{name}`" for name in ex.banned)
        + "."
        if ex.banned
        else ""
    )
    return (
        "## How this notebook works\n\n"
        "1. Run the **set-up** cell below first.\n"
        f"2. Write your code in the **answer cell**: it is the module `exercises/{ex.module}` the text above "
        "talks about, with every function's contract in its docstring. Replace each "
        "`# YOUR CODE HERE` / `raise NotImplementedError` with your implementation, and keep the "
        f"cell's first line, `%%llmkit_module {ex.module}`: it tells llmkit which module the cell is. "
        "Helper functions and imports may go anywhere in that cell.\n"
        "3. Run the answer cell, then the **public tests** cell and the **check** cell: the check runs "
        "the public tests on your code and says what is wrong.\n"
        f"4. When you submit, hidden graders (random inputs, edge cases, gradients, speed) give up to "
        f"{ex.points} points, test by test, so partly working code earns partial credit.{gpu}"
        f"{banned}"
    )


def _hints_and_resources(ex: Exercise) -> str:
    parts = ["## Hints and resources"]
    for i, hint in enumerate(ex.hints, start=1):
        parts.append(f"<details><summary>Hint {i} of {len(ex.hints)}</summary>\n\n{hint}\n\n</details>")
    if ex.resources:
        parts.append("\n".join(f"- [{r.title}]({r.url})" for r in ex.resources))
    return "\n\n".join(parts)


def exercise_notebook(catalog: Catalog, ex: Exercise, tests: list[GraderTest]):
    """The source notebook of one exercise (solutions and hidden tests included)."""
    import nbformat

    v4 = nbformat.v4
    root = catalog.root
    try:
        code = answer_cell(
            _read(root / "exercises" / ex.module, f"the stub of {ex.id}"),
            _read(root / "solutions" / ex.module, f"the reference solution of {ex.id}"),
            ex.module,
        )
    except MergeError as exc:
        raise BuildError(f"exercise {ex.id}: {exc}") from None
    public = _read(root / ex.public_test, f"the public tests of {ex.id}")
    readme = _read(root / "exercises" / ex.section_dir / "README.md", f"the README of section {ex.section}")
    narrative = exercise_narrative(readme, ex.id, [e.id for e in catalog.in_section(ex.section)])
    try:
        support = load_support(ex, root)
        supports = [
            (p.relative_to(root / "exercises").as_posix(), p.read_text("utf-8"))
            for p in support_files(ex, root)
        ]
    except SupportError as exc:
        raise BuildError(f"exercise {ex.id}: {exc}") from None
    if not callable(getattr(support, "figure", None)):
        raise BuildError(f"exercise {ex.id} has no figure yet: {ex.support}: define figure(impl)")
    try:
        png, caption = support.figure(resolve_root("solutions", root).load(ex))  # the reference at work
    except ImportError as exc:  # a library of the exercise's own (the catalog's `needs`)
        raise BuildError(f"exercise {ex.id}: its figure needs {exc.name}: pip install {exc.name}") from None
    gpu_names = sorted({t.name for t in tests if t.gpu})
    gpu_points = sum(t.points for t in tests if t.gpu)
    points = sum(t.points for t in tests if not t.gpu)
    section = next((s for s in catalog.sections if s.number == ex.section), None)
    section_title = f"Section {ex.section} — {section.title}" if section else f"Section {ex.section}"
    fields = dict(module=ex.module, title=ex.title, difficulty=ex.difficulty, track=ex.track)
    banned = "".join(f"        {json.dumps(name)},\n" for name in ex.banned)
    setup = (
        "# Set-up: llmkit's notebook helpers. Run this cell first.\n"
        "%load_ext llmkit.nbgrader.runtime\n"
        "import llmkit.nbgrader.runtime as llmkit_nb\n\n"
        f"llmkit_nb.exercise(\n    {json.dumps(ex.id)},\n"
        + "".join(f"    {key}={json.dumps(value, ensure_ascii=False)},\n" for key, value in fields.items())
        + f"    points={ex.points},\n"
        + (f"    banned=[\n{banned}    ],\n" if banned else "")
        + ")"
    )
    cells = [
        v4.new_markdown_cell(
            f"# Exercise {ex.id}: {ex.title}\n\n"
            f"**{section_title}** · **Difficulty:** {ex.difficulty} · **Track:** {ex.track} · "
            f"**Points:** {ex.points}\n\n{ex.summary}"
        ),
        v4.new_markdown_cell(
            f"![{caption}](attachment:figure.png)\n\n*{caption}.*",
            attachments={"figure.png": {"image/png": base64.b64encode(png).decode("ascii")}},
        ),
        v4.new_markdown_cell(narrative),
        v4.new_markdown_cell(_guide(ex, points, gpu_points)),
        v4.new_code_cell(setup, metadata=_nbgrader_meta("setup", locked=True)),
        v4.new_markdown_cell(f"## Your code: `{ex.module}`"),
        v4.new_code_cell(
            f"%%llmkit_module {ex.module}\n{code}", metadata=_nbgrader_meta("answer", solution=True)
        ),
        v4.new_markdown_cell("Try your code here (this cell is not graded)."),
        v4.new_code_cell(""),
        v4.new_markdown_cell(
            f"## Checks\n\nThe public tests, as in `{ex.public_test}`, and the helpers they load from "
            f"`{ex.support}` (read-only). Run these cells, then the check cell below them."
        ),
        *(
            v4.new_code_cell(
                f"%%llmkit_support {path}\n{text.rstrip()}",
                metadata=_nbgrader_meta(f"support_{i}" if i else "support", locked=True),
            )
            for i, (path, text) in enumerate(supports)
        ),
        v4.new_code_cell(
            f"%%llmkit_public_tests {ex.id}\n{public.rstrip()}",
            metadata=_nbgrader_meta("public_tests", locked=True),
        ),
        v4.new_code_cell(
            _test_cell_source(ex, points, gpu_names),
            metadata=_nbgrader_meta("tests", grade=True, locked=True, points=points),
        ),
    ]
    if gpu_names:
        cells.append(
            v4.new_code_cell(
                _gpu_cell_source(ex, gpu_points, gpu_names),
                metadata=_nbgrader_meta("gpu_tests", grade=True, locked=True, points=gpu_points),
            )
        )
    cells += [
        v4.new_markdown_cell(
            f"## Picture your code\n\nThe figure at the top, drawn with your `{ex.module}` "
            f"(as `llmkit show {ex.id}` does). Run it again after each change."
        ),
        v4.new_code_cell(f"llmkit_nb.show({json.dumps(ex.id)})"),
        v4.new_markdown_cell(_hints_and_resources(ex)),
    ]
    nb = v4.new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    return nb, points, gpu_points


def build_course(
    course_dir: Path,
    catalog: Catalog,
    sections: list[int] | None = None,
    exercise_ids: list[str] | None = None,
) -> Course:
    """Write (or rewrite) the course's config and the chosen exercises' notebooks."""
    try:
        import matplotlib  # noqa: F401  (the figures)
        import nbformat
    except ImportError as exc:
        raise BuildError(f"{exc.name} is not installed: pip install -e '.[instructor]'") from None
    course_dir = Path(course_dir).resolve()
    check_course_dir(course_dir)
    configure_compute()  # the figures run the reference's code
    exercises = select_exercises(catalog, sections, exercise_ids)
    tests = collect_grader_tests(catalog, exercises)
    built = []
    for ex in exercises:
        nb, points, gpu_points = exercise_notebook(catalog, ex, tests[ex.id])
        built.append((ex, nb, points, gpu_points))
    course = Course(course_dir)
    course_dir.mkdir(parents=True, exist_ok=True)
    config = course_dir / CONFIG_FILE
    previous = config.read_text(encoding="utf-8") if config.exists() else None
    config.write_text(config_text(catalog, previous), encoding="utf-8")
    for ex, nb, points, gpu_points in built:
        path = course_dir / "source" / f"section{ex.section}" / f"{ex.topic}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        course.notebooks.append(BuiltNotebook(ex, path, points, gpu_points))
    return course
