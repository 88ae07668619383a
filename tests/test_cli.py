"""The llmkit command line."""

import json
import os
import subprocess
import sys
import time

from llmkit.catalog import load_catalog
from llmkit.cli import main


def test_list_shows_catalog(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "2.3" in out and "Scaled" in out and "intermediate" in out


def test_hints_are_progressive(kit, monkeypatch, capsys):
    monkeypatch.chdir(kit.path)
    assert main(["hint", "2.3"]) == 0
    first = capsys.readouterr().out
    assert "Hint 1/4" in first and "Hint 2/4" not in first
    assert main(["hint", "2.3"]) == 0
    second = capsys.readouterr().out
    assert "Hint 1/4" in second and "Hint 2/4" in second and "Hint 3/4" not in second
    assert main(["hint", "2.3", "--all"]) == 0
    assert "Hint 4/4" in capsys.readouterr().out


def test_hints_print_verbatim_brackets_included(kit, monkeypatch, capsys):
    """Hints are text, never rich markup: `U[o]` and `[neg]` survive."""
    monkeypatch.chdir(kit.path)
    for ex in load_catalog(kit.path).exercises:
        assert main(["hint", ex.id, "--all"]) == 0
        out = "".join(capsys.readouterr().out.split())
        for hint in ex.hints:
            assert "".join(hint.split()) in out, (ex.id, hint)


def test_unknown_exercise_is_a_clear_error(capsys):
    assert main(["hint", "9.9"]) == 2
    out = capsys.readouterr().out
    assert "no exercise '9.9' in the catalog (known: " in out and "2.3" in out


def test_status_shows_kept_results_and_says_when_they_are_stale(kit, monkeypatch, capsys):
    monkeypatch.chdir(kit.path)
    assert main(["status", "2.3"]) == 0
    out = capsys.readouterr().out
    assert "not run yet" in out and "No up-to-date results for 2.3" in out
    assert main(["status", "2.3", "--refresh"]) == 0  # runs the public tests and keeps the result
    out = capsys.readouterr().out
    assert "not started" in out and "0 of 1 exercises done" in out
    assert main(["status", "2.3"]) == 0  # from the kept result: no pytest run
    out = capsys.readouterr().out
    assert "not started" in out and "just now" in out and "No up-to-date" not in out
    stub = kit.path / "exercises" / "section2" / "attention.py"
    later = time.time() + 10
    os.utime(stub, (later, later))  # the learner saved the stub since
    assert main(["status", "2.3"]) == 0
    out = capsys.readouterr().out
    assert "stale" in out and "attention.py" in out and "No up-to-date results for 2.3" in out
    assert main(["status", "2.3", "--impl", "solutions", "--refresh"]) == 0
    out = capsys.readouterr().out
    assert "done" in out and "1 of 1 exercises done" in out


def test_check_keeps_its_result_for_status(kit, monkeypatch, capsys):
    monkeypatch.chdir(kit.path)
    assert main(["check", "--impl", "solutions", "2.3"]) == 0
    capsys.readouterr()
    assert main(["status", "2.3", "--impl", "solutions"]) == 0
    out = capsys.readouterr().out
    assert "done" in out and "6/6" in out and "1 of 1 exercises done" in out


# Runs one CLI command in a fresh interpreter, then prints which heavy modules it imported.
PROBE = """
import json, sys
from llmkit.cli import main
code = main(sys.argv[1:])
print(json.dumps([code, [m for m in ("torch", "numpy", "pytest", "llmkit.plugin") if m in sys.modules]]))
"""


def test_learner_commands_import_no_torch(kit):
    """list, hint and status start fast: neither torch nor numpy (nor pytest) is imported."""
    from llmkit.kept_results import results_dir
    from llmkit.result import ExerciseResult, SubmissionResult, TestResult

    catalog = load_catalog(kit.path)  # a kept result, so status reads and summarizes it
    test = TestResult("exercises/section2/test_attention.py::t", "2.3", "passed", 0, 0, "", 0.1, "visible")
    kept = SubmissionResult("exercises/", "exercises/", 1, "2026-01-01T00:00:00+00:00", [], [test])
    kept.exercises.append(ExerciseResult("2.3", "attention", 0, 0, "graded"))
    kept.write(results_dir(catalog, None) / "2.3.json")
    said = {}
    for argv in (["list"], ["hint", "2.3"], ["status"], ["status", "2.3", "--impl", "solutions"]):
        cmd = [sys.executable, "-c", PROBE, *argv]
        run = subprocess.run(cmd, cwd=kit.path, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        code, heavy = json.loads(run.stdout.splitlines()[-1])
        assert code == 0 and heavy == [], f"llmkit {' '.join(argv)}: exit {code}, imported {heavy}"
        said[" ".join(argv)] = run.stdout
    assert "Hint 1/4" in said["hint 2.3"]
    assert "done" in said["status"] and "1/1" in said["status"]  # read from the kept result


def test_report_renders_results_and_survives_a_bad_file(kit, tmp_path):
    good = tmp_path / "alice.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "graders/section2/test_attention.py",
            "--impl",
            "solutions",
            "--llmkit-report",
            str(good),
            "--submission-id",
            "alice",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=kit.path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    out = tmp_path / "grades"
    report = subprocess.run(
        [sys.executable, "-m", "llmkit.cli", "report", str(good), str(bad), "-o", str(out)],
        cwd=kit.path,
        capture_output=True,
        text=True,
    )
    assert report.returncode == 1
    printed = report.stdout.replace("\n", "")  # rich wraps long temporary paths
    assert "skipped" in printed and "broken.json" in printed
    gradebook = (out / "gradebook.csv").read_text()
    assert gradebook.splitlines()[1].startswith("alice,")
    assert (out / "report.html").exists() and (out / "submissions" / "alice" / "feedback.html").exists()


def test_grade_refuses_without_a_jail_and_names_the_flag(tmp_path, monkeypatch, capsys):
    """No silent degradation: without a jail `llmkit grade` grades nothing, says why and
    names --trust-submissions; with that flag it grades in plain sandbox workers."""
    import os
    import shutil

    from llmkit.catalog import load_catalog
    from llmkit.sandbox import launch

    catalog = load_catalog()
    sub = tmp_path / "alice" / "section2"
    sub.mkdir(parents=True)
    shutil.copy(catalog.root / "exercises" / "section2" / "attention.py", sub / "attention.py")
    monkeypatch.setattr(launch, "namespaces_available", lambda: "bubblewrap (bwrap) is not installed")
    monkeypatch.setattr(launch.os, "geteuid", lambda: 1000)
    monkeypatch.delenv("LLMKIT_JAIL", raising=False)
    argv = ["grade", str(tmp_path / "alice"), "-o", str(tmp_path / "grades"), "--only", "2.3", "--seed", "1"]
    assert main(argv) == 2
    said = capsys.readouterr().out
    assert "bubblewrap (bwrap) is not installed" in said and "--trust-submissions" in said
    assert not (tmp_path / "grades").exists(), "something was graded"
    monkeypatch.setattr(os, "environ", {**os.environ})  # the command sets LLMKIT_JAIL for its children
    assert main([*argv, "--trust-submissions"]) == 0
    assert "jail: trusted" in capsys.readouterr().out
    assert (tmp_path / "grades" / "gradebook.csv").exists()
