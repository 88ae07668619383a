"""Grading isolation: no forged result, no lost row.

Each test grades a real batch through ``llmkit grade`` (or ``grade_batch``) and reads the class
gradebook. The grading itself is not the point here, so ``grade_submission`` is replaced by a fake
that takes the submission's modules with the real ``prepare_submission`` and scores 2.3 by a
``SCORE = N`` line in the learner's attention module: every learner's row is told apart by its score.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import tempfile
import zipfile
from pathlib import Path

import pytest

from llmkit import grading
from llmkit.cli import main
from llmkit.grading import (
    SubmissionError,
    expand_sources,
    failed_result,
    grade_batch,
    prepare_submission,
    submission_id,
)
from llmkit.result import ExerciseResult, SubmissionResult

MODULE = "section2/attention.py"
COLUMN = "2.3 Scaled dot-product and multi-head attention"


def learner(root: Path, name: str, score: int, *, top: str = "") -> Path:
    """A submission directory whose 2.3 module scores ``score`` under the fake grader."""
    path = root / name / top / MODULE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"SCORE = {score}\n")
    return root / name


def learner_zip(root: Path, name: str, score: int) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(MODULE, f"SCORE = {score}\n")
    return path


@pytest.fixture
def graded(monkeypatch) -> list[str]:
    """Replace the grading of one submission by a fast fake; returns the ids it graded, in order."""
    calls: list[str] = []

    def fake(source, catalog, *, exercises=None, seed=None, sandbox=True, timeout_s=0.0, sid=None):
        sid = sid or submission_id(Path(source))
        calls.append(sid)
        exercises = exercises or list(catalog.exercises)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                prepared = prepare_submission(Path(source), catalog, Path(tmp) / "s")
            except SubmissionError as exc:
                return failed_result(sid, exercises, seed or 0, str(exc))
            text = (prepared.directory / MODULE).read_text() if MODULE in prepared.found else ""
        match = re.search(r"SCORE = (\d+)", text)
        return SubmissionResult(
            submission=sid,
            implementation=str(source),
            seed=seed or 0,
            graded_at="2026-01-01T00:00:00+00:00",
            exercises=[
                ExerciseResult(
                    e.id,
                    e.title,
                    float(match.group(1)) if match and e.id == "2.3" else 0.0,
                    float(e.points),
                    "graded",
                )
                for e in exercises
            ],  # fmt: skip
            tests=[],
        )

    monkeypatch.setattr(grading, "grade_submission", fake)
    return calls


def grade(*args: str | Path) -> int:
    return main(["grade", *map(str, args), "--only", "2.3", "--seed", "1", "--no-sandbox"])


def gradebook(out: Path) -> dict[str, float]:
    """{student_id: points for 2.3} from the class gradebook."""
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    scores = {row["student_id"]: float(row[COLUMN]) for row in rows}
    assert len(scores) == len(rows), f"two rows share a student_id: {rows}"
    return scores


def stored(out: Path, sid: str) -> Path:
    """The result file of ``sid``, wherever the layout keeps it."""
    (path,) = [p for p in out.rglob("result.json") if p.parent.name == sid]
    return path


# --- no lost row -------------------------------------------------------------------------


def test_a_section_named_folder_beside_the_learners_does_not_swallow_the_class(tmp_path, graded):
    subs = tmp_path / "subs"
    learner(subs, "alice", 3)
    learner(subs, "bob", 4)
    learner(subs, "carol", 5, top="carol")  # one top folder, as an unpacked zip of a folder has
    (subs / "section_x").mkdir()  # a stray folder, or a learner who chose that name
    (subs / "section_x" / "notes.txt").write_text("hello")
    out = tmp_path / "grades"
    assert grade(subs, "-o", out) == 0
    rows = gradebook(out)
    assert rows == {"alice": 3, "bob": 4, "carol": 5, "section_x": 0}
    assert sorted(graded) == sorted(rows)


def test_a_directory_and_a_zip_with_one_name_get_a_row_each(tmp_path, graded, capsys):
    subs = tmp_path / "subs"
    learner(subs, "alice", 3)
    learner_zip(subs, "alice.zip", 7)
    learner(subs, "bob", 4)
    out = tmp_path / "grades"
    assert grade(subs, "-o", out) == 0
    assert gradebook(out) == {"alice": 3, "alice-2": 7, "bob": 4}  # the directory sorts first
    assert "as alice-2" in capsys.readouterr().out
    # the same files named in the other order get the same ids
    again = tmp_path / "again"
    assert grade(subs / "alice.zip", subs / "bob", subs / "alice", "-o", again) == 0
    assert gradebook(again) == {"alice": 3, "alice-2": 7, "bob": 4}


def test_names_that_sanitise_alike_get_a_row_each(tmp_path, graded):
    learner(tmp_path / "x", "a b", 1)
    learner(tmp_path / "y", "a_b", 2)
    learner(tmp_path / "z", "A_B", 3)
    out = tmp_path / "grades"
    assert grade(tmp_path / "x" / "a b", tmp_path / "y" / "a_b", tmp_path / "z" / "A_B", "-o", out) == 0
    assert gradebook(out) == {"a_b": 1, "a_b-2": 2, "A_B-3": 3}  # unique case-insensitively too


@pytest.mark.parametrize("name", ["gradebook.csv", "report.html"])
def test_a_submission_named_like_a_class_file(tmp_path, graded, name):
    subs = tmp_path / "subs"
    learner(subs, name, 6)
    learner(subs, "bob", 4)
    out = tmp_path / "grades"
    assert grade(subs, "-o", out) == 0
    assert (out / "gradebook.csv").is_file() and (out / "report.html").is_file()
    assert gradebook(out) == {name: 6, "bob": 4}
    assert "bob" in (out / "report.html").read_text(encoding="utf-8")
    feedback = out / "submissions" / name / "feedback.html"
    assert feedback.is_file() and (out / "submissions" / name / "result.json").is_file()


def test_the_folder_rule(tmp_path, catalog):
    subs = tmp_path / "subs"
    learner(subs, "alice", 1)
    learner(subs, "bob", 1, top="bob")
    (subs / "section_x").mkdir()
    (subs / "__MACOSX").mkdir()
    (subs / ".git").mkdir()
    (subs / "notes.txt").write_text("x")
    learner_zip(subs, "cy.zip", 1)
    notes: list[str] = []
    got = expand_sources([subs], catalog, on_note=notes.append)
    assert [p.name for p in got] == ["alice", "bob", "cy.zip", "section_x"]
    assert any("notes.txt" in n for n in notes)
    modules = [ex.module for ex in catalog.exercises]
    assert grading.is_one_submission(subs / "alice", modules)  # section2/attention.py directly
    assert grading.is_one_submission(subs / "bob", modules)  # under its only top folder
    assert not grading.is_one_submission(subs, modules)
    assert not grading.is_one_submission(subs / "section_x", modules)
    # the rule's one ambiguity: a folder holding a single learner's folder reads as that one submission
    assert expand_sources([tmp_path / "solo"], catalog) == [learner(tmp_path / "solo", "alice", 1).parent]
    # the flags force either reading
    assert expand_sources([subs], catalog, mode="one") == [subs]
    assert expand_sources([subs / "bob"], catalog, mode="folder") == [subs / "bob" / "bob"]
    # a file is one submission; a path given twice is graded once
    assert expand_sources([subs / "cy.zip", subs / "alice", subs / "alice"], catalog) == [
        subs / "cy.zip",
        subs / "alice",
    ]


def test_the_cli_flags_force_the_reading(tmp_path, graded):
    subs = tmp_path / "subs"
    learner(subs, "alice", 3)
    learner(subs, "bob", 4)
    one = tmp_path / "one"
    assert grade(subs, "-o", one, "--one-submission") == 0
    assert list(gradebook(one)) == ["subs"]
    folder = tmp_path / "folder"
    assert grade(subs / "alice", "-o", folder, "--folder-of-submissions") == 0
    assert gradebook(folder) == {"section2": 0}  # alice's section2/ read as a submission of its own
    with pytest.raises(SystemExit):
        grade(subs, "-o", tmp_path / "x", "--one-submission", "--folder-of-submissions")


# --- no forged result ----------------------------------------------------------------------


def test_forged_results_are_regraded_and_never_reach_the_gradebook(tmp_path, graded, capsys):
    subs = tmp_path / "subs"
    for name, score in (("alice", 1), ("bob", 2), ("carol", 3), ("dave", 9), ("erin", 4)):
        learner(subs, name, score)
    out = tmp_path / "grades"
    assert grade(subs, "-o", out) == 0
    honest = gradebook(out)
    assert honest == {"alice": 1, "bob": 2, "carol": 3, "dave": 9, "erin": 4}
    graded.clear()

    # alice: the points edited in place
    path = stored(out, "alice")
    path.write_text(path.read_text().replace('"points": 1.0', '"points": 20.0'))
    # bob: a result written from scratch by someone without the key (and no MAC at all)
    forged = json.loads(stored(out, "bob").read_text())
    forged["exercises"][0]["points"] = 20.0
    stored(out, "bob").write_text(json.dumps(forged))
    for mac in stored(out, "bob").parent.glob("*.mac"):
        mac.unlink()
    # carol: dave's genuine result and MAC copied over hers
    dave = stored(out, "dave")
    for file in dave.parent.iterdir():
        if file.name.startswith("result.json"):
            (stored(out, "carol").parent / file.name).write_bytes(file.read_bytes())

    capsys.readouterr()
    assert grade(subs, "-o", out) == 0  # no --force
    said = capsys.readouterr().out
    for sid in ("alice", "bob", "carol"):
        assert f"regraded {sid}: its stored result did not verify" in said, said
    assert sorted(graded) == ["alice", "bob", "carol"]  # dave and erin were read back
    assert gradebook(out) == honest


def test_the_key(tmp_path, graded, catalog):
    subs = tmp_path / "subs"
    learner(subs, "alice", 1)
    out = tmp_path / "new" / "grades"
    grade_batch([subs / "alice"], catalog, out)
    key = out / ".llmkit-key"
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    first = key.read_bytes()
    grade_batch([subs / "alice"], catalog, out)
    assert key.read_bytes() == first and graded == ["alice"]  # the key is kept, the result read back
    notes: list[str] = []
    os.chmod(key, 0o644)  # a key others could have read is no key
    grade_batch([subs / "alice"], catalog, out, on_note=notes.append)
    assert key.read_bytes() != first and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert graded == ["alice", "alice"] and any("regraded alice" in n for n in notes), notes


# --- a report that cannot be written -------------------------------------------------------


def test_one_report_failing_leaves_the_others_written(tmp_path, graded, monkeypatch, capsys):
    import llmkit.reports as reports

    subs = tmp_path / "subs"
    for name, score in (("alice", 1), ("bob", 2), ("carol", 3)):
        learner(subs, name, score)
    out = tmp_path / "grades"
    (out / "submissions").mkdir(parents=True)
    (out / "submissions" / "carol").write_text("in the way")  # carol's directory cannot be made
    real = reports.write_feedback

    def write_feedback(result, catalog, path):
        if result.submission == "bob":
            raise RuntimeError("template exploded")
        real(result, catalog, path)

    monkeypatch.setattr(reports, "write_feedback", write_feedback)
    assert grade(subs, "-o", out) == 0  # grading completed
    err = capsys.readouterr().err
    assert re.search(r"could not write \S*bob/feedback\.html: RuntimeError: template exploded", err), err
    assert "carol/feedback.html" in err and "carol/gradescope_results.json" in err
    assert gradebook(out) == {"alice": 1, "bob": 2, "carol": 3}
    assert (out / "report.html").is_file()
    assert (out / "submissions" / "alice" / "feedback.html").is_file()
    assert (out / "submissions" / "bob" / "gradescope_results.json").is_file()
    assert (out / "submissions" / "bob" / "exercism_results.json").is_file()


def test_a_gradebook_that_cannot_be_written(tmp_path, graded, capsys):
    subs = tmp_path / "subs"
    out = tmp_path / "grades"
    (out / "gradebook.csv").mkdir(parents=True)  # in the way
    assert (
        grade(learner(subs, "alice", 1), "-o", out) == 1
    )  # a script must not pick up a missing or stale gradebook
    err = capsys.readouterr().err
    assert "gradebook.csv" in err, err
    assert (out / "report.html").is_file() and (out / "submissions" / "alice" / "feedback.html").is_file(), (
        err
    )
