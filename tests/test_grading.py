"""Instructor grading: submissions in (directories, zips, broken ones), one result per
submission out, batches that survive bad input, reruns that skip finished work."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from llmkit.cli import main
from llmkit.grading import SubmissionError, grade_batch, prepare_submission, submission_id
from llmkit.reports import write_reports
from llmkit.result import SubmissionResult

MODULE = "section2/attention.py"


def make_dir(root: Path, name: str, files: dict[str, bytes | str]) -> Path:
    sub = root / name
    for rel, data in files.items():
        path = sub / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    sub.mkdir(parents=True, exist_ok=True)
    return sub


def make_zip(root: Path, name: str, members: dict[str, str]) -> Path:
    path = root / name
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in members.items():
            archive.writestr(member, text)
    return path


@pytest.fixture(scope="module")
def reference(catalog) -> str:
    return (catalog.root / "solutions" / MODULE).read_text()


def test_prepare_takes_only_catalog_modules(tmp_path, catalog, reference):
    source = make_dir(
        tmp_path,
        "alice",
        {
            "alice/" + MODULE: reference,  # one top folder, as zips of a folder have
            "alice/conftest.py": "raise SystemExit",
            "alice/pytest.ini": "[pytest]\n",
            "alice/section2/helpers.py": "x = 1",
        },
    )
    prepared = prepare_submission(source, catalog, tmp_path / "work")
    assert prepared.found == [MODULE]
    assert sorted(p.relative_to(tmp_path / "work").as_posix() for p in (tmp_path / "work").rglob("*.*")) == [
        MODULE
    ]


@pytest.mark.parametrize(
    "members, message",
    [
        ({}, "empty zip"),
        ({"../../evil/" + MODULE: "x"}, "points outside the submission"),
        ({"/abs/" + MODULE: "x"}, "points outside the submission"),
        ({"notes.txt": "hello"}, "no exercise modules found"),
    ],
)
def test_bad_zips_are_refused_with_a_reason(tmp_path, catalog, members, message):
    with pytest.raises(SubmissionError, match=message):
        prepare_submission(make_zip(tmp_path, "bad.zip", members), catalog, tmp_path / "work")
    assert not (tmp_path / "evil").exists()


def test_a_file_that_is_not_a_zip(tmp_path, catalog):
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SubmissionError, match="not a readable zip"):
        prepare_submission(fake, catalog, tmp_path / "work")


def test_submission_ids_are_file_name_safe():
    assert submission_id(Path("Alice Smith.zip")) == "Alice_Smith"
    assert submission_id(Path("../..")) == "__"


@pytest.fixture(scope="module")
def batch(tmp_path_factory, catalog, reference):
    """One batch of good and broken submissions, graded sandboxed on exercise 2.3."""
    root = tmp_path_factory.mktemp("batch")
    subs = root / "submissions"
    subs.mkdir()
    sources = [
        make_dir(subs, "solution", {MODULE: reference}),
        make_zip(subs, "zipped.zip", {"zipped/" + MODULE: reference}),
        make_dir(subs, "syntax_error", {MODULE: reference + "\ndef broken(:\n"}),
        make_dir(
            subs,
            "wrong_names",
            {MODULE: reference.replace("class MultiHeadAttention(", "class MultiheadAttention(")},
        ),
        make_dir(subs, "not_utf8", {MODULE: b"# caf\xe9\n" + reference.encode()}),
        make_dir(subs, "missing_module", {"section2/attn.py": reference}),
        make_zip(subs, "empty.zip", {}),
        make_zip(subs, "traversal.zip", {"../" + MODULE: reference}),
    ]
    outdir = root / "grades"
    results = grade_batch(sources, catalog, outdir, exercises=[catalog.get("2.3")], seed=3, jobs=2)
    return {r.submission: r for r in results}, sources, outdir


def test_every_submission_gets_a_result(batch):
    results, sources, outdir = batch
    assert sorted(results) == sorted(submission_id(s) for s in sources)
    for sid in results:
        assert SubmissionResult.read(outdir / "submissions" / sid / "result.json").submission == sid


def test_good_submissions_get_full_points(batch):
    results, _, _ = batch
    for sid in ("solution", "zipped"):
        assert results[sid].points == results[sid].max_points == 20, results[sid].tests


@pytest.mark.parametrize(
    "sid, message",
    [
        ("syntax_error", "SyntaxError"),
        ("not_utf8", "not valid UTF-8"),
        ("missing_module", "no exercise modules found"),
        ("empty", "empty zip"),
        ("traversal", "points outside the submission"),
    ],
)
def test_broken_submissions_score_zero_with_a_clear_message(batch, sid, message):
    result = batch[0][sid]
    assert result.points == 0
    text = " ".join(
        [result.error or ""] + [t.message for t in result.tests] + [e.message for e in result.exercises]
    )
    assert message in text, text[:1500]
    assert "Traceback" not in text


def test_an_exercise_missing_from_a_submission_says_so_in_one_line_per_test(tmp_path, catalog, reference):
    sub = make_dir(tmp_path, "only_attention", {MODULE: reference})
    exercises = [catalog.get("2.3"), catalog.get("6.3")]
    (result,) = grade_batch([sub], catalog, tmp_path / "grades", exercises=exercises, seed=3)
    assert not [t for t in result.tests if t.exercise == "6.3"]  # one line for the exercise instead
    (missing,) = [e for e in result.exercises if e.id == "6.3"]
    assert (missing.status, missing.points, missing.message) == (
        "missing",
        0,
        "the submission has no section6/pass_at_k.py",
    )
    assert result.points == 20 and result.implementation == "submission only_attention"

    # Every rendered format says it once for the exercise, with no engine internals.
    write_reports([result], catalog, tmp_path / "grades")
    folder = tmp_path / "grades" / "submissions" / "only_attention"
    rendered = {
        name: (folder / name).read_text()
        for name in ("feedback.html", "gradescope_results.json", "exercism_results.json")
    }
    rendered["gradebook.csv"] = (tmp_path / "grades" / "gradebook.csv").read_text()
    for name, text in rendered.items():
        for leak in ("Traceback", "site-packages", str(tmp_path), "/tmp/"):
            assert leak not in text, (name, leak)
    for name in ("feedback.html", "gradescope_results.json", "exercism_results.json"):
        assert rendered[name].count("has no section6/pass_at_k.py") == 1, (name, rendered[name][:3000])


def test_wrong_names_lose_only_what_they_break(batch):
    result = batch[0]["wrong_names"]
    failed = {t.name for t in result.tests if t.status != "passed"}
    assert failed == {"test_mha_matches_torch", "test_mha_mask_and_gradients"}, failed
    assert result.points == 15
    messages = " ".join(t.message for t in result.tests if t.name.startswith("test_mha"))
    assert "MultiHeadAttention" in messages and "AttributeError" in messages


def test_cli_grades_reports_and_skips_finished_work(tmp_path, capsys, catalog, reference):
    sub = make_dir(tmp_path, "bob", {MODULE: reference})
    out = tmp_path / "grades"
    assert main(["grade", str(sub), "-o", str(out), "--only", "2.3", "--seed", "5"]) == 0
    bob = out / "submissions" / "bob"
    first = (bob / "result.json").stat().st_mtime_ns
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("bob,")
    assert (out / "report.html").exists() and (bob / "feedback.html").exists()
    assert json.loads((bob / "gradescope_results.json").read_text())["score"] == 20
    assert main(["grade", str(sub), "-o", str(out), "--only", "2.3"]) == 0
    assert (bob / "result.json").stat().st_mtime_ns == first, "a finished submission was regraded"
    assert "already graded" in capsys.readouterr().out
    assert main(["grade", str(sub), "-o", str(out), "--only", "2.3", "--force"]) == 0
    assert (bob / "result.json").stat().st_mtime_ns != first


def test_a_folder_of_submissions_stands_for_them(tmp_path):
    from llmkit.grading import expand_sources

    make_dir(tmp_path / "all", "ann", {MODULE: "x"})
    make_dir(tmp_path / "all", "ben", {MODULE: "x"})
    make_zip(tmp_path / "all", "cy.zip", {MODULE: "x"})
    single = make_dir(tmp_path, "dee", {"dee/" + MODULE: "x"})  # one submission, one top folder
    got = expand_sources([tmp_path / "all", single])
    assert [p.name for p in got] == ["ann", "ben", "cy.zip", "dee"]


def test_cli_rejects_unknown_exercise_ids(tmp_path, capsys):
    assert main(["grade", str(tmp_path), "-o", str(tmp_path / "o"), "--only", "9.9"]) == 2
    assert "9.9" in capsys.readouterr().out


def test_two_submissions_with_one_id_get_ids_of_their_own(tmp_path, catalog):
    from llmkit.grading import assign_ids

    a = make_dir(tmp_path / "x", "same", {MODULE: "x"})
    b = make_dir(tmp_path / "y", "same", {MODULE: "x"})
    taken = make_dir(tmp_path / "z", "same-2", {MODULE: "x"})  # a natural id is never handed out twice
    assert assign_ids([b, taken, a]) == ["same-3", "same-2", "same"]  # by source path, not by order given
    assert assign_ids([Path("Same"), Path("same.zip")]) == ["Same", "same-2"]  # case-insensitively
