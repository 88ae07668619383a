"""The learner edition (`llmkit release`): nothing hidden in it, installable from scratch,
every exercise "not started" as shipped and "done" with the reference modules copied in,
and a GitHub Classroom workflow whose commands run here."""

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from llmkit.catalog import load_catalog
from llmkit.grading import expand_sources, is_one_submission, prepare_submission
from llmkit.release import (
    CLASSROOM_WORKFLOW,
    INSTRUCTOR_MODULES,
    ReleaseError,
    build_release,
    install_extras,
    select_exercises,
)

from .conftest import PROJECT_ROOT

CATALOG = load_catalog(PROJECT_ROOT)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "course"
    build_release(CATALOG, list(CATALOG.exercises), out)
    return out


def _text_files(root: Path):
    for path in root.rglob("*"):
        if path.is_file():
            yield path, path.read_text("utf-8", errors="replace")


QUOTES_ALLOWED = 3  # lines of one reference that hints, a README or a public test may quote


def _shipped_code(release: Path) -> dict[str, str]:
    return {p.relative_to(release).as_posix(): p.read_text("utf-8") for p in release.rglob("*.py")}


def _solution_lines(ex, code: dict[str, str]) -> list[str]:
    """The reference's non-trivial lines: at least 20 characters, not a comment, not given
    in the exercise's own stub or support module, and not an idiom that other exercises'
    shipped code or the engine also holds (an import, a projection layer, a ValueError)."""
    own = {f"exercises/{ex.module}", ex.support}
    given = "\n".join(code.get(path, "") for path in own)
    elsewhere = "\n".join(text for path, text in code.items() if path not in own and path != ex.public_test)
    lines = []
    for line in (PROJECT_ROOT / "solutions" / ex.module).read_text("utf-8").splitlines():
        text = line.strip()
        if (
            len(text) >= 20
            and not text.startswith(("#", '"""'))
            and text not in given
            and text not in elsewhere
        ):
            lines.append(text)
    return lines


def test_nothing_hidden_is_shipped(release):
    """No hidden tree, and no reference code: every non-trivial line of every reference is
    searched for in every shipped file. Code holds none; hints (catalog.toml), READMEs and
    the public tests' messages may quote a few lines of one reference to teach, never more
    than QUOTES_ALLOWED."""
    shipped = [p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()]
    assert not [p for p in shipped if p.split("/")[0] in ("solutions", "graders", "tests", "benchmarks")]
    assert not [p for p in shipped if p.endswith("_oracle.py") or "__" in Path(p).stem.strip("_")]
    engine = {p.split("/")[2] for p in shipped if p.startswith("src/llmkit/")}
    assert not engine & set(INSTRUCTOR_MODULES)
    code = _shipped_code(release)
    texts = {p.relative_to(release).as_posix(): t for p, t in _text_files(release)}
    for ex in CATALOG.exercises:
        lines = _solution_lines(ex, code)
        assert len(lines) >= 5, f"{ex.id}: too few reference lines to search for"
        for path, text in texts.items():
            found = [line for line in lines if line in text]
            name = Path(path).name
            teaching = name in ("catalog.toml", "README.md") or name.startswith("test_")
            limit = QUOTES_ALLOWED if teaching else 0
            assert len(found) <= limit, f"{ex.id}: {len(found)} reference lines in {path}: {found[:6]}"


def test_selection_by_section_track_and_id():
    assert {ex.section for ex in select_exercises(CATALOG, ["2"], None, None)} == {2}
    assert all(ex.track == "beginner" for ex in select_exercises(CATALOG, None, None, "beginner"))
    assert {ex.id for ex in select_exercises(CATALOG, None, ["2.3,1.3"], None)} == {"1.3", "2.3"}
    with pytest.raises(ReleaseError, match="no exercises in section"):
        select_exercises(CATALOG, ["9"], None, None)
    with pytest.raises(ReleaseError, match="no exercise '9.9'"):
        select_exercises(CATALOG, None, ["9.9"], None)


def test_a_partial_release_lists_only_its_exercises(tmp_path):
    chosen = select_exercises(CATALOG, None, ["2.3"], None)
    build_release(CATALOG, chosen, tmp_path / "one")
    catalog = load_catalog(tmp_path / "one")
    assert [ex.id for ex in catalog.exercises] == ["2.3"]
    assert "2.1" not in (tmp_path / "one" / "README.md").read_text().split("## Set-up")[0]
    with pytest.raises(ReleaseError, match="not an empty directory"):
        build_release(CATALOG, chosen, tmp_path / "one")


def test_classroom_workflow_gives_each_exercise_its_points(release):
    workflow = yaml.safe_load((release / CLASSROOM_WORKFLOW).read_text())
    assert set(workflow[True]) >= {"push"}  # YAML 1.1 reads the key `on` as True
    (job,) = workflow["jobs"].values()
    graders = [s for s in job["steps"] if "autograding-command-grader" in s.get("uses", "")]
    (reporter,) = [s for s in job["steps"] if "autograding-grading-reporter" in s.get("uses", "")]
    commands = [f"pytest -q {ex.public_test}" for ex in CATALOG.exercises]
    assert [s["with"]["command"] for s in graders] == commands
    assert [s["with"]["max-score"] for s in graders] == [ex.points for ex in CATALOG.exercises]
    ids = [s["id"] for s in graders]
    assert reporter["with"]["runners"].split(",") == ids
    assert reporter["env"] == {f"{i.upper()}_RESULTS": f"${{{{steps.{i}.outputs.result}}}}" for i in ids}


@pytest.fixture(scope="module")
def fresh_venv(release, tmp_path_factory) -> Path:
    """A virtual environment made from scratch, with the release installed as its README says."""
    where = tmp_path_factory.mktemp("venv") / "venv"
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    extras = install_extras(list(CATALOG.exercises))
    for args in (["torch==2.13.0"], ["-e", f"{release}[{extras}]"]):
        run = subprocess.run([python, "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return where


def _llmkit(venv_dir: Path, release: Path, *args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LLMKIT_ROOT", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    return subprocess.run(list(args), cwd=release, env=env, capture_output=True, text=True)


def _status(venv_dir, release) -> dict[str, str]:
    run = _llmkit(venv_dir, release, "llmkit", "status", "--refresh")
    rows = {}
    for line in run.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 4 and cells[1] in {ex.id for ex in CATALOG.exercises}:
            rows[cells[1]] = cells[4]
    assert len(rows) == len(CATALOG.exercises), run.stdout[-3000:] + run.stderr[-2000:]
    return rows


def test_installed_from_scratch_learners_start_and_finish(release, fresh_venv):
    check = _llmkit(fresh_venv, release, "python", "-c", "import llmkit, sys; print(llmkit.__file__)")
    assert check.stdout.strip().startswith(str(release)), check.stdout + check.stderr
    usage = _llmkit(fresh_venv, release, "llmkit", "--help").stdout
    commands = set(usage.split("{", 1)[1].split("}", 1)[0].split(","))
    assert commands == {"list", "doctor", "status", "check", "hint", "show", "watch", "fetch-assets"}, usage
    assert set(_status(fresh_venv, release).values()) == {"not started"}

    for ex in CATALOG.exercises:  # the learner finishes every exercise
        shutil.copy(PROJECT_ROOT / "solutions" / ex.module, release / "exercises" / ex.module)
    try:
        assert set(_status(fresh_venv, release).values()) == {"done"}  # every public test passes
        # The Classroom workflow's commands run as written: the first and the last exercise's
        # (the others differ only in the test file; the structure test checks them all).
        workflow = yaml.safe_load((release / CLASSROOM_WORKFLOW).read_text())
        (job,) = workflow["jobs"].values()
        steps = [s for s in job["steps"] if "autograding-command-grader" in s.get("uses", "")]
        for step in (steps[0], steps[-1]):
            run = _llmkit(fresh_venv, release, *step["with"]["command"].split())
            assert run.returncode == 0, (step["name"], run.stdout[-2000:])
    finally:
        for ex in CATALOG.exercises:
            shutil.copy(PROJECT_ROOT / "exercises" / ex.module, release / "exercises" / ex.module)


def test_release_command_refuses_a_bad_selection(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "llmkit.cli", "release", str(tmp_path / "x"), "--exercises", "9.9"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "no exercise '9.9'" in run.stdout and "Traceback" not in run.stderr


def test_clones_of_the_release_are_graded_as_submissions(release, tmp_path):
    """What `gh classroom clone` gives: one folder per learner, each a clone of the release."""
    clones = tmp_path / "clones"
    for learner in ("ana", "ben"):
        shutil.copytree(release, clones / learner)
    assert is_one_submission(clones / "ana", [ex.module for ex in CATALOG.exercises])
    sources = expand_sources([clones], CATALOG)
    assert [s.name for s in sources] == ["ana", "ben"]
    prepared = prepare_submission(clones / "ana", CATALOG, tmp_path / "work")
    assert sorted(prepared.found) == sorted(ex.module for ex in CATALOG.exercises)
