"""Report renderers: CSV gradebook, Gradescope and exercism results.json, HTML pages, file layout."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from markupsafe import escape

from llmkit.catalog import load_catalog
from llmkit.reports import (
    exercism_results,
    gradescope_results,
    safe_name,
    write_gradebook,
    write_reports,
    write_text_atomically,
)
from llmkit.result import ExerciseResult, SubmissionResult, TestResult

ROOT = Path(__file__).resolve().parent.parent
XSS = "<script>alert(1)</script>"
GRADER = "graders/section2/test_attention.py"
PUBLIC = "exercises/section2/test_attention.py"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(ROOT)


def t(name, status, points, max_points, *, message="", visibility="hidden", metrics=None, ex="2.3"):
    path = GRADER if visibility == "hidden" else PUBLIC
    return TestResult(
        f"{path}::{name}", ex, status, points, max_points, message, 0.1, visibility, metrics or {}
    )


def ex_result(ex, points, status="graded", max_points=None):
    return ExerciseResult(
        ex.id, ex.title, float(points), float(ex.points if max_points is None else max_points), status
    )


def submission(sid, exercises, tests, error=None):
    return SubmissionResult(sid, "submissions/", 1234, "2026-11-28T18:40:00+00:00", exercises, tests, error)


@pytest.fixture(scope="module")
def results(catalog):
    others = [ex for ex in catalog.exercises if ex.id != "2.3"]
    att = catalog.get("2.3")
    alice = submission(
        "alice",
        [ex_result(ex, ex.points) for ex in catalog.exercises],
        [
            t("test_sdpa_matches[causal]", "passed", 10, 10, visibility="visible"),
            t("test_sdpa_speed", "passed", 10, 10, metrics={"speed_ratio": 1.2}),
        ],
    )
    bob = submission(  # partial: one failure with hostile text, faster than alice; other modules missing
        "bob",
        [ex_result(att, 10)] + [ex_result(ex, 0, "missing") for ex in others],
        [
            t("test_sdpa_matches[causal]", "passed", 10, 10, visibility="visible"),
            t(
                "test_sdpa_speed",
                "failed",
                0,
                10,
                message=f"mismatch {XSS}",
                metrics={"speed_ratio": 0.81234},
            ),
        ],
    )
    carol = submission(
        "carol",
        [ex_result(ex, 0) for ex in catalog.exercises],
        [
            t(
                "test_sdpa_matches[causal]",
                "not_started",
                0,
                10,
                visibility="visible",
                message="NotImplementedError",
            ),
            t("test_sdpa_speed", "not_started", 0, 10),
        ],
    )
    dave = submission("dave", [], [], error="bad zip: File is not a zip file")
    evil = submission(  # the GPU test was skipped; its id tries to escape the output directory
        "../evil",
        [ex_result(att, 15, max_points=15)],
        [
            t("test_sdpa_matches[causal]", "passed", 10, 10, visibility="visible"),
            t("test_sdpa_speed", "passed", 5, 5),
            t("test_sdpa_gpu", "skipped", 0, 5, message="not graded: no GPU"),
        ],
    )
    return {r.submission: r for r in (alice, bob, carol, dave, evil)}


def test_gradebook_csv(tmp_path, catalog, results):
    path = tmp_path / "gradebook.csv"
    write_gradebook(list(results.values()), catalog, path)
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    columns = [f"{ex.id} {ex.title}" for ex in catalog.exercises]
    assert header == ["student_id", *columns, "total_score", "max_score", "status", "seed", "error"]
    assert "2.3 Scaled dot-product and multi-head attention" in header
    assert [r[0] for r in body] == sorted(results)  # sorted by submission id
    by_id = {r[0]: dict(zip(header, r)) for r in body}
    total = sum(ex.points for ex in catalog.exercises)

    alice = by_id["alice"]
    assert all(alice[f"{ex.id} {ex.title}"] == str(ex.points) for ex in catalog.exercises)
    assert (alice["total_score"], alice["max_score"], alice["status"], alice["seed"], alice["error"]) == (
        str(total),
        str(total),
        "ok",
        "1234",
        "",
    )
    bob = by_id["bob"]
    assert bob["2.3 Scaled dot-product and multi-head attention"] == "10"
    assert bob["total_score"] == "10"
    for ex in catalog.exercises:
        if ex.id != "2.3":  # missing: 0, never an empty cell, and the status says why
            assert bob[f"{ex.id} {ex.title}"] == "0"
            assert f"{ex.id} missing" in bob["status"]
    dave = by_id["dave"]
    assert all(dave[c] == "0" for c in columns)
    assert (dave["total_score"], dave["max_score"], dave["status"]) == ("0", str(total), "error")
    assert dave["error"] == "bad zip: File is not a zip file"
    evil = by_id["../evil"]
    assert (evil["total_score"], evil["max_score"]) == ("15", "15")
    assert all(f"{ex.id} not_run" in evil["status"] for ex in catalog.exercises if ex.id != "2.3")


def test_gradescope(catalog, results):
    bob = gradescope_results(results["bob"], catalog)
    assert bob["score"] == 10.0 == sum(x["score"] for x in bob["tests"])
    assert bob["visibility"] == "visible" and bob["stdout_visibility"] == "hidden"
    assert "10/" in bob["output"] and "seed 1234" in bob["output"]
    first, speed = bob["tests"][:2]
    assert first == {
        "name": "2.3 sdpa matches [causal]",
        "number": "2.3",
        "score": 10.0,
        "max_score": 10.0,
        "status": "passed",
        "output": "",
        "visibility": "visible",
    }
    assert (speed["status"], speed["visibility"], speed["score"], speed["max_score"]) == (
        "failed",
        "after_published",
        0.0,
        10.0,
    )
    assert XSS in speed["output"]  # JSON is not HTML: kept verbatim
    missing = [x for x in bob["tests"] if x["number"] != "2.3"]
    assert len(missing) == len(catalog.exercises) - 1
    assert all(x["status"] == "failed" and x["score"] == 0 and x["max_score"] > 0 for x in missing)
    assert bob["leaderboard"] == [{"name": "2.3 speed (x baseline time)", "value": 0.812, "order": "asc"}]
    json.dumps(bob)  # serialisable

    alice = gradescope_results(results["alice"], catalog)
    assert alice["leaderboard"][0]["value"] == 1.2
    assert all(x["status"] == "passed" for x in alice["tests"])

    carol = gradescope_results(results["carol"], catalog)
    assert carol["score"] == 0
    assert [x["output"] for x in carol["tests"]] == [
        "not started: NotImplementedError",
        "not started: the stub still raises NotImplementedError",
    ]
    assert "leaderboard" not in carol

    evil = gradescope_results(results["../evil"], catalog)
    skipped = evil["tests"][-1]
    assert (skipped["score"], skipped["max_score"], skipped["output"]) == (0.0, 0.0, "not graded: no GPU")
    assert evil["score"] == 15.0 == sum(x["score"] for x in evil["tests"])
    assert sum(x["max_score"] for x in evil["tests"]) == 15.0

    dave = gradescope_results(results["dave"], catalog)
    assert dave["output"] == "bad zip: File is not a zip file"
    assert dave["score"] == 0 and dave["tests"] == []


def test_exercism(catalog, results):
    task_23 = [ex.id for ex in catalog.exercises].index("2.3") + 1
    alice = exercism_results(results["alice"], catalog)
    assert alice["version"] == 3 and alice["status"] == "pass" and "message" not in alice
    assert alice["tests"][0] == {
        "name": "2.3 sdpa matches [causal]",
        "status": "pass",
        "test_code": f"{PUBLIC}::test_sdpa_matches[causal]",
        "task_id": task_23,
    }

    bob = exercism_results(results["bob"], catalog)
    assert bob["status"] == "fail" and "message" not in bob
    assert bob["tests"][1]["status"] == "fail" and XSS in bob["tests"][1]["message"]
    assert all(isinstance(x["task_id"], int) for x in bob["tests"])
    assert {x["task_id"] for x in bob["tests"]} == set(range(1, len(catalog.exercises) + 1))

    carol = exercism_results(results["carol"], catalog)
    assert carol["status"] == "fail"
    assert [x["status"] for x in carol["tests"]] == ["fail", "fail"]
    assert carol["tests"][0]["message"].startswith("not started: ")

    dave = exercism_results(results["dave"], catalog)
    assert (dave["status"], dave["message"]) == ("error", "bad zip: File is not a zip file")

    evil = exercism_results(results["../evil"], catalog)
    assert evil["status"] == "pass" and len(evil["tests"]) == 2  # the skipped test did not run

    errored = submission("erin", [], [t("test_sdpa_speed", "error", 0, 10, message="Timeout after 60 s")])
    doc = exercism_results(errored)  # no catalog: task ids follow the result's exercises (none here)
    assert doc["status"] == "error" and "Timeout after 60 s" in doc["message"]
    assert doc["tests"] == [
        {
            "name": "2.3 sdpa speed",
            "status": "error",
            "message": "error: Timeout after 60 s",
            "test_code": f"{GRADER}::test_sdpa_speed",
        }
    ]


def test_safe_name():
    for sid in ("../evil", "..", ".", "", "a/../../b", "...", "x\\..\\y", "nul\x00", "é"):
        name = safe_name(sid)
        assert name and ".." not in name and "/" not in name and not name.startswith(".")
        assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
    assert safe_name("alice.smith-2_x") == "alice.smith-2_x"
    assert safe_name("a b/c") == "a_b_c"


def test_write_reports(tmp_path, catalog, results):
    outdir = tmp_path / "out"
    extra = submission("a/b", [], [], error="boom")
    twin = submission("a_b", [], [], error="boom")
    dirs = write_reports([*results.values(), extra, twin], catalog, outdir)

    assert not (tmp_path / "evil").exists()
    assert dirs["../evil"].parent == outdir / "submissions" and dirs["../evil"].name == "___evil"
    assert dirs["a/b"] != dirs["a_b"]  # sanitised names that collide get a suffix
    files = sorted(p.relative_to(outdir).as_posix() for p in outdir.rglob("*") if p.is_file())
    assert "gradebook.csv" in files and "report.html" in files
    for sub in dirs.values():
        assert sub.resolve().parent == (outdir / "submissions").resolve()
        for name in ("feedback.html", "gradescope_results.json", "exercism_results.json"):
            assert (sub / name).is_file()
    assert not [f for f in files if f.endswith(".tmp") or "/." in f or f.startswith(".")]  # no temp files
    assert json.loads((dirs["bob"] / "exercism_results.json").read_text(encoding="utf-8"))["status"] == "fail"

    report = (outdir / "report.html").read_text(encoding="utf-8")
    assert "<script" not in report and "&lt;script&gt;" not in report  # messages are not on the class page
    assert "<svg" in report and "<rect" in report
    board = report[report.index("Speed leaderboards") : report.index("Gradebook</h2>")]
    assert "2.3 speed (x baseline time)" in board
    assert board.index(">bob<") < board.index(">alice<")  # best (lowest) ratio first
    assert "0.812" in board and "1.200" in board
    assert "bad zip: File is not a zip file" in report
    hardest = report[report.index("Hardest tests") : report.index("Speed leaderboards")]
    assert hardest.index("2.3 sdpa speed") < hardest.index("2.3 sdpa matches [causal]")  # lowest rate first
    assert "2/4" in hardest and "3/4" in hardest  # pass counts (skipped tests are not counted)
    assert "2.3 Scaled dot-product and multi-head attention" in report

    feedback = (dirs["bob"] / "feedback.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in feedback and "<script" not in feedback
    assert "<pre>mismatch &lt;script&gt;" in feedback
    att = catalog.get("2.3")
    assert str(escape(att.hints[0])) in feedback
    assert all(f'href="{escape(r.url)}"' in feedback for r in att.resources)
    assert "seed 1234" in feedback and "10 / 20" in feedback

    alice = (dirs["alice"] / "feedback.html").read_text(encoding="utf-8")
    assert str(escape(att.hints[0])) not in alice  # full marks: no hints
    assert "not started: NotImplementedError" in (dirs["carol"] / "feedback.html").read_text(encoding="utf-8")
    assert "bad zip" in (dirs["dave"] / "feedback.html").read_text(encoding="utf-8")


def test_hostile_submission_id_is_escaped(tmp_path, catalog):
    result = submission(XSS, [], [], error=f"crashed {XSS}")
    dirs = write_reports([result], catalog, tmp_path)
    for page in (tmp_path / "report.html", dirs[XSS] / "feedback.html"):
        text = page.read_text(encoding="utf-8")
        assert "<script" not in text and "&lt;script&gt;" in text


def test_write_text_atomically(tmp_path, monkeypatch):
    path = tmp_path / "a.csv"
    write_text_atomically(path, "x,y\r\n1,2\r\n")
    assert path.read_bytes() == b"x,y\r\n1,2\r\n"  # line endings as given (csv writes \r\n)

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_text_atomically(path, "partial")
    assert path.read_bytes() == b"x,y\r\n1,2\r\n"  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]  # and no temp file is left
