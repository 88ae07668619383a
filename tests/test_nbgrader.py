"""nbgrader packaging: answer-cell merging, narratives, build errors, and an end-to-end
run of the real nbgrader (generate_assignment, autograde, generate_feedback, export)."""

from __future__ import annotations

import ast
import copy
import csv
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmkit.catalog import load_catalog
from llmkit.nbgrader import runtime
from llmkit.nbgrader.merge import CODE_STUB, MergeError, answer_cell, release_text, solution_text
from llmkit.nbgrader.narrative import exercise_narrative
from llmkit.support import support_files

from .conftest import PROJECT_ROOT

CATALOG = load_catalog(PROJECT_ROOT)
HAS_NBGRADER = importlib.util.find_spec("nbgrader") is not None and importlib.util.find_spec("matplotlib")
needs_nbgrader = pytest.mark.skipif(
    not HAS_NBGRADER, reason="nbgrader is not installed: pip install -e '.[instructor]'"
)
BIN = Path(sys.executable).parent  # nbgrader, alembic and the kernel's python live next to this python


def code_line(line: str) -> str:
    return line.split("  # ", 1)[0].strip()  # without a trailing comment


def stripped_lines(text: str) -> set[str]:
    return {code_line(line) for line in text.splitlines()}


def solution_only_lines(ex) -> list[str]:
    """Code lines of the reference (docstrings and comments aside) that appear nowhere in
    the stub, the public tests or the support modules (all are the learner's already)."""
    reference = (PROJECT_ROOT / "solutions" / ex.module).read_text()
    docstrings = set()
    for node in ast.walk(ast.parse(reference)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    public = (PROJECT_ROOT / ex.public_test).read_text()
    public += "".join(path.read_text() for path in support_files(ex, PROJECT_ROOT))
    known = stripped_lines((PROJECT_ROOT / "exercises" / ex.module).read_text()) | stripped_lines(public)
    return [
        code_line(line)
        for number, line in enumerate(reference.splitlines(), start=1)
        if number not in docstrings
        and len(code_line(line)) >= 12
        and code_line(line) not in known
        and not code_line(line).startswith("#")
    ]


# --- answer cells -----------------------------------------------------------


@pytest.mark.parametrize("ex", CATALOG.exercises, ids=lambda ex: ex.id)
def test_answer_cell_releases_the_stub_and_holds_the_reference(ex):
    stub = (PROJECT_ROOT / "exercises" / ex.module).read_text()
    reference = (PROJECT_ROOT / "solutions" / ex.module).read_text()
    cell = answer_cell(stub, reference, ex.module)
    released = release_text(cell)
    assert ast.dump(ast.parse(released)) == ast.dump(ast.parse(stub))
    assert not set(solution_only_lines(ex)) & stripped_lines(released)
    assert set(solution_only_lines(ex)) <= stripped_lines(solution_text(cell))


def run(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "<cell>", "exec"), namespace)
    return namespace


def test_merge_keeps_stub_text_and_makes_it_dead_code_in_the_solution():
    stub = textwrap.dedent(
        '''
        import math


        class Box:
            """A box."""

            def __init__(self, size):
                """Store the size."""
                raise NotImplementedError

            def area(self):
                raise NotImplementedError

            def double(self):
                raise NotImplementedError


        def given():
            return 1
        '''
    )
    reference = textwrap.dedent(
        """
        import math
        import functools


        def _helper(x):
            return x * 2


        class Box:
            def double(self):  # defined before the others here
                return _helper(self.size)

            def __init__(self, size):
                self.size = size

            @functools.lru_cache(maxsize=None)
            def area(self):
                return self._square()

            def _square(self):
                return self.size**2


        def given():
            return 1
        """
    )
    cell = answer_cell(stub, reference)
    released = release_text(cell)
    assert ast.dump(ast.parse(released)) == ast.dump(ast.parse(stub))
    assert CODE_STUB in released and "_helper" not in released and "lru_cache" not in released
    box = run(solution_text(cell))["Box"](3)  # __init__ falls through: a `return` guards the stub's raise
    assert (box.size, box.area(), box.double()) == (3, 9, 6)
    with pytest.raises(NotImplementedError):
        run(released)["Box"](3)


def test_merge_refuses_a_changed_signature():
    with pytest.raises(MergeError, match="different signature"):
        answer_cell("def f(x):\n    raise NotImplementedError\n", "def f(x, y):\n    return x\n", "m.py")


# --- narratives --------------------------------------------------------------

README = """# Section 9 — Test

<!-- llmkit:exercises:start -->
## Exercise 9.1: generated
<!-- llmkit:exercises:end -->

Intro for everyone.

## 9.1 — Why the first matters

First only.

## Why the second matters

Second only.

## What you build

**9.1 — `a.py`.** Part of the first.

**9.2 — `b.py`.** Part of the second.

```
**9.1 — not a tag inside code**
```
"""


def test_narrative_keeps_an_exercises_own_sections():
    first = exercise_narrative(README, "9.1", ["9.1", "9.2"])
    second = exercise_narrative(README, "9.2", ["9.1", "9.2"])
    assert "## Why the first matters" in first and "First only." in first
    assert "Second only." not in first and "generated" not in first
    assert "Intro for everyone." in first and "Intro for everyone." in second
    assert "Second only." in second and "First only." not in second
    assert "Part of the second." in second and "Part of the first." not in second
    assert "not a tag inside code" in second


# --- building: errors ----------------------------------------------------------


def llmkit(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llmkit.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def build_cli(capsys, *args: str) -> tuple[int, str]:
    from llmkit.cli import main

    code = main(["nbgrader", "build", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


@needs_nbgrader
@pytest.mark.parametrize(
    "args, message",
    [
        (["--sections", "9"], "there is no section 9"),
        (["--exercises", "2.9"], "no exercise '2.9' in the catalog"),
    ],
)
def test_build_rejects_bad_selections(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(PROJECT_ROOT)
    code, output = build_cli(capsys, str(tmp_path / "course"), *args)
    assert code == 2 and message in output and "Traceback" not in output
    assert not (tmp_path / "course").exists()


def test_a_section_without_exercises_is_named():
    from dataclasses import replace

    from llmkit.nbgrader.build import BuildError, select_exercises

    catalog = load_catalog(PROJECT_ROOT)
    without_3 = replace(catalog, exercises=tuple(ex for ex in catalog.exercises if ex.section != 3))
    named = r"section 3 has no exercises yet \(sections with exercises: 0, 1, 2, 4,"
    with pytest.raises(BuildError, match=named):
        select_exercises(without_3, [3])


def test_build_rejects_a_section_that_is_not_a_number(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_cli(capsys, "course", "--sections", "two")
    assert exit_info.value.code == 2
    assert "a section is a number such as 2, got 'two'" in capsys.readouterr().err


@needs_nbgrader
def test_build_refuses_a_directory_that_is_not_its_course(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)
    (tmp_path / "notes.txt").write_text("mine")
    code, output = build_cli(capsys, str(tmp_path), "--exercises", "2.3")
    assert code == 2 and "is not empty and is not an nbgrader course" in output
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    code, output = build_cli(capsys, str(tmp_path), "--exercises", "2.3")
    assert code == 2 and "that `llmkit nbgrader build` did not write" in output
    assert not (tmp_path / "source").exists()


@needs_nbgrader
def test_rebuild_updates_the_course_and_keeps_the_instructors_settings(tmp_path):
    from llmkit.nbgrader.build import KEEP_MARKER, build_course

    course = build_course(tmp_path, CATALOG, exercise_ids=["5.1"])
    assert [nb.path.relative_to(tmp_path).as_posix() for nb in course.notebooks] == [
        "source/section5/lora.ipynb"
    ]
    config = tmp_path / "nbgrader_config.py"
    assert f'"LLMKIT_NBGRADER_KIT", "{PROJECT_ROOT}"' in config.read_text()
    config.write_text(config.read_text().replace(KEEP_MARKER, KEEP_MARKER + "\nc.Execute.timeout = 1234"))
    (tmp_path / "gradebook.db").write_text("the instructor's")
    build_course(tmp_path, CATALOG, exercise_ids=["5.1"])
    assert "c.Execute.timeout = 1234" in config.read_text().split(KEEP_MARKER)[1]
    assert (tmp_path / "gradebook.db").read_text() == "the instructor's"


@needs_nbgrader
def test_build_refuses_points_that_disagree_with_the_catalog(project_copy, tmp_path):
    from llmkit.nbgrader.build import BuildError, build_course

    catalog_file = project_copy / "catalog.toml"
    catalog_file.write_text(catalog_file.read_text().replace("points = 20", "points = 21"))
    with pytest.raises(BuildError, match=r"graders of 2.3 .* are worth 20 points but the catalog says 21"):
        build_course(tmp_path / "course", load_catalog(project_copy), exercise_ids=["2.3"])


@needs_nbgrader
def test_build_names_the_support_module_that_lacks_a_figure(project_copy, tmp_path):
    from llmkit.nbgrader.build import BuildError, build_course

    support = project_copy / "exercises/support/section2/attention.py"
    support.write_text(support.read_text().replace("def figure(", "def no_figure("))
    with pytest.raises(BuildError, match=r"exercises/support/section2/attention\.py: define figure\(impl\)"):
        build_course(tmp_path / "course", load_catalog(project_copy), exercise_ids=["2.3"])


# --- end to end with the real nbgrader -----------------------------------------

STUDENTS = ("solution", "untouched", "partial", "edited", "dies")


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    # nbgrader's database migrations call `alembic`, and the kernel spec runs `python`:
    # both must come from this environment, whatever the caller's PATH holds.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("LLMKIT_NBGRADER_KIT", None)  # the course's nbgrader_config.py sets it
    # no user-level Jupyter config or kernels: the course's config and this environment's kernel
    env["JUPYTER_CONFIG_DIR"] = env["JUPYTER_DATA_DIR"] = str(course.parent / "jupyter")
    return subprocess.run(
        [str(BIN / "nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True, timeout=600
    )


def cell(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def splice_class(answer: str, stub: str, name: str) -> str:
    """An answer cell's text with class ``name`` replaced by the stub's version of it."""

    def span(text):
        node = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef) and n.name == name)
        return node.lineno, node.end_lineno

    magic, module = answer.split("\n", 1)  # %%llmkit_module ...
    lines, stub_lines = module.split("\n"), stub.split("\n")
    (a, b), (c, d) = span(module), span(stub)
    return "\n".join([magic, *lines[: a - 1], *stub_lines[c - 1 : d], *lines[b:]])


def submit(course: Path, assignment: str, student: str, notebook: str, nb) -> None:
    import nbformat

    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / notebook))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course with exercises 2.3 (five kinds of submissions) and 7.2 (a GPU-only test
    cell; the solution and an untouched release), autograded by the real nbgrader."""
    if not HAS_NBGRADER:
        pytest.skip("nbgrader is not installed: pip install -e '.[instructor]'")
    import nbformat

    root = tmp_path_factory.mktemp("nbgrader") / "course"
    proc = llmkit("nbgrader", "build", str(root), "--exercises", "2.3", "7.2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    logs = {}
    for assignment in ("section2", "section7"):
        proc = nbgrader(root, "generate_assignment", assignment, "--force")
        assert proc.returncode == 0, proc.stdout + proc.stderr

    attention = CATALOG.get("2.3")
    source = nbformat.read(str(root / "source/section2/attention.ipynb"), 4)
    release = nbformat.read(str(root / "release/section2/attention.ipynb"), 4)
    solved = copy.deepcopy(release)
    cell(solved, "answer").source = solution_text(cell(source, "answer").source)
    partial = copy.deepcopy(solved)  # everything but MultiHeadAttention
    stub = (PROJECT_ROOT / "exercises" / attention.module).read_text()
    cell(partial, "answer").source = splice_class(cell(solved, "answer").source, stub, "MultiHeadAttention")
    edited = copy.deepcopy(partial)
    cell(edited, "tests").source = f"{attention.points:.1f}"  # claims full marks
    dies = copy.deepcopy(solved)
    cell(dies, "answer").source += "\nimport os\nos._exit(1)\n"
    for student, nb in zip(STUDENTS, (solved, release, partial, edited, dies)):
        submit(root, "section2", student, "attention.ipynb", nb)

    source7 = nbformat.read(str(root / "source/section7/triton_attention.ipynb"), 4)
    release7 = nbformat.read(str(root / "release/section7/triton_attention.ipynb"), 4)
    solved7 = copy.deepcopy(release7)
    cell(solved7, "answer").source = solution_text(cell(source7, "answer").source)
    submit(root, "section7", "solution", "triton_attention.ipynb", solved7)
    submit(root, "section7", "untouched", "triton_attention.ipynb", release7)

    for assignment in ("section2", "section7"):
        logs[assignment] = nbgrader(root, "autograde", assignment, "--force")
    proc = nbgrader(root, "generate_feedback", "section2", "--force")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    logs["export"] = nbgrader(root, "export")
    assert logs["export"].returncode == 0, logs["export"].stdout + logs["export"].stderr
    from llmkit.nbgrader.build import collect_grader_tests

    graders = collect_grader_tests(CATALOG, [attention, CATALOG.get("7.2")])
    return root, logs, {"solved": solved, "release": release}, graders


def read_notebook(path: Path):
    import nbformat

    return nbformat.read(str(path), 4)


def gradebook(root: Path):
    from nbgrader.api import Gradebook

    return Gradebook(f"sqlite:///{root / 'gradebook.db'}")


def grades(root: Path, assignment: str, student: str) -> dict[str, tuple[float | None, bool]]:
    with gradebook(root) as gb:
        submission = gb.find_submission(assignment, student)
        return {
            g.name: (g.auto_score, g.needs_manual_grade) for nb in submission.notebooks for g in nb.grades
        } | {"total": (submission.score, False)}


@needs_nbgrader
def test_release_holds_stubs_and_no_solution_or_hidden_test(course):
    root, *_ = course
    released_files = [p for p in (root / "release").rglob("*") if p.is_file()]
    assert sorted(p.relative_to(root).as_posix() for p in released_files) == [
        "release/section2/attention.ipynb",
        "release/section7/triton_attention.ipynb",
    ]
    for ex, path in (
        (CATALOG.get("2.3"), root / "release/section2/attention.ipynb"),
        (CATALOG.get("7.2"), root / "release/section7/triton_attention.ipynb"),
    ):
        text = path.read_text()
        nb = read_notebook(path)
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "_llmkit_grading", "start_grading"):
            assert marker not in text, (path.name, marker)
        leaked = set(solution_only_lines(ex)) & set().union(*(stripped_lines(c.source) for c in nb.cells))
        assert not leaked, sorted(leaked)[:5]
        answer = cell(nb, "answer").source
        assert answer.startswith(f"%%llmkit_module {ex.module}\n")
        stub = (PROJECT_ROOT / "exercises" / ex.module).read_text()
        assert ast.dump(ast.parse(answer.split("\n", 1)[1])) == ast.dump(ast.parse(stub))
        assert any("figure.png" in c.get("attachments", {}) for c in nb.cells)  # the picture travels inside


@needs_nbgrader
def test_gradebook_scores(course):
    root, logs, _, graders = course
    ex = CATALOG.get("2.3")
    tests = graders["2.3"]
    mha = [t for t in tests if t.name.startswith("test_mha")]
    assert mha, "the attention graders no longer have test_mha_* tests; update this test's partial submission"
    partial_points = ex.points - sum(t.points for t in mha)
    assert grades(root, "section2", "solution") == {"tests": (ex.points, False), "total": (ex.points, False)}
    assert grades(root, "section2", "untouched") == {"tests": (0.0, False), "total": (0.0, False)}
    assert grades(root, "section2", "partial") == {
        "tests": (partial_points, False),
        "total": (partial_points, False),
    }
    assert 0 < partial_points < ex.points
    # the edited test cell was restored from the source: its code scores what the partial code scores
    assert grades(root, "section2", "edited") == {
        "tests": (partial_points, False),
        "total": (partial_points, False),
    }
    edited = read_notebook(root / "autograded/edited/section2/attention.ipynb")
    source = read_notebook(root / "source/section2/attention.ipynb")
    assert cell(edited, "tests").source == cell(source, "tests").source
    # the kernel that died: no automatic score, flagged for the instructor; the others were graded
    assert grades(root, "section2", "dies") == {"tests": (None, True), "total": (0.0, False)}
    assert "error processing assignment 'section2' for student 'dies'" in logs["section2"].stderr
    assert logs["section7"].returncode == 0, logs["section7"].stderr[-3000:]

    triton = CATALOG.get("7.2")
    gpu_points = sum(t.points for t in graders["7.2"] if t.gpu)
    assert gpu_points > 0
    import torch

    if torch.cuda.is_available():
        expected = {"tests": (triton.points - gpu_points, False), "gpu_tests": (gpu_points, False)}
    else:  # GPU-only points are not graded here: their own cell says so and scores 0
        expected = {"tests": (triton.points - gpu_points, False), "gpu_tests": (0.0, False)}
        notebook = read_notebook(root / "autograded/solution/section7/triton_attention.ipynb")
        assert "not graded: no GPU" in "".join(o.get("text", "") for o in cell(notebook, "gpu_tests").outputs)
    total = expected["tests"][0] + expected["gpu_tests"][0]
    assert grades(root, "section7", "solution") == {**expected, "total": (total, False)}
    assert grades(root, "section7", "untouched") == {
        "tests": (0.0, False),
        "gpu_tests": (0.0, False),
        "total": (0.0, False),
    }


@needs_nbgrader
def test_test_cells_run_the_kit_graders_and_write_only_to_stdout(course):
    root, *_, graders = course
    for student in ("solution", "partial"):
        nb = read_notebook(root / f"autograded/{student}/section2/attention.ipynb")
        outputs = cell(nb, "tests").outputs
        assert [o.output_type for o in outputs if o.output_type not in ("stream", "execute_result")] == []
        assert all(o.name == "stdout" for o in outputs if o.output_type == "stream")
        printed = "".join(o.text for o in outputs if o.output_type == "stream")
        for test in graders["2.3"]:
            assert test.name in printed  # the same hidden graders as `llmkit grade`
        assert ("sandboxed" if runtime.SANDBOX else "in-process") in printed
        result = [o for o in outputs if o.output_type == "execute_result"]
        assert (
            len(result) == 1
            and float(result[0].data["text/plain"]) == grades(root, "section2", student)["tests"][0]
        )


@needs_nbgrader
def test_feedback_and_export(course):
    root, *_ = course
    for student in ("solution", "untouched", "partial", "edited"):
        assert (root / f"feedback/{student}/section2/attention.html").is_file()
    html = (root / "feedback/solution/section2/attention.html").read_text()
    assert "Hidden graders: 20/20 points" in html
    with open(root / "grades.csv", newline="") as fh:
        rows = {(r["assignment"], r["student_id"]): float(r["score"]) for r in csv.DictReader(fh)}
    assert rows[("section2", "solution")] == 20.0
    assert rows[("section2", "untouched")] == 0.0
    assert rows[("section2", "partial")] == rows[("section2", "edited")] > 0


@needs_nbgrader
def test_release_notebook_runs_public_checks_in_a_learners_kernel(course):
    """A learner's kernel (no grading set-up): the check cell runs the public tests."""
    from nbclient import NotebookClient

    root, _, notebooks, _ = course
    env_without_kit = {k: v for k, v in os.environ.items() if k != "LLMKIT_NBGRADER_KIT"}
    env_without_kit["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"

    def execute(nb):
        nb = copy.deepcopy(nb)
        client = NotebookClient(
            nb,
            timeout=300,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(root)}},
        )
        client.execute(env=env_without_kit)
        return nb

    solved = execute(notebooks["solved"])
    outputs = cell(solved, "tests").outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    assert "public checks pass" in "".join(o.get("text", "") for o in outputs)
    untouched = execute(notebooks["release"])
    errors = [o for o in cell(untouched, "tests").outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["PublicChecksFailed"]
