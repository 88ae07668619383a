"""Gradescope memory: the peak of a real run_autograder, and the split that --max-memory plans."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from llmkit import gradescope_memory
from llmkit.catalog import load_catalog
from llmkit.cli import main
from llmkit.gradescope_bundle import BundleError
from llmkit.gradescope_memory import MB, group_output, measure_bundle, plan_bundles, tree_memory

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog(PROJECT_ROOT)


def fake_peaks(extra_mb: dict[str, float], base_mb: float = 300):
    """A measure in which memory does not add up, as in the real thing: the process's base
    once, the largest exercise whole, the others half."""
    calls: list[tuple[str, ...]] = []

    def measure(exercises) -> int:
        calls.append(tuple(ex.id for ex in exercises))
        extras = sorted((extra_mb[ex.id] for ex in exercises), reverse=True)
        return int((base_mb + extras[0] + sum(extras[1:]) / 2) * MB)

    return measure, calls


def exercises(*ids):
    return [CATALOG.get(i) for i in ids]


def test_everything_in_one_bundle_when_it_fits():
    measure, calls = fake_peaks({"2.1": 200, "2.3": 100, "7.1": 300})
    groups = plan_bundles(exercises("7.1", "2.1", "2.3"), 768 * MB, measure)
    assert [[ex.id for ex in g.exercises] for g in groups] == [["2.1", "2.3", "7.1"]]
    assert groups[0].peak == 750 * MB
    assert calls == [("2.1", "2.3", "7.1")]  # one measurement, in catalog order


def test_split_by_section_then_by_runs_of_exercises():
    extra = {"2.1": 300, "2.3": 300, "2.4": 300, "7.1": 400, "7.2": 100}
    measure, calls = fake_peaks(extra)
    lines: list[str] = []
    groups = plan_bundles(exercises(*extra), 768 * MB, measure, say=lines.append)
    # 2.1+2.3 = 750 fits, + 2.4 = 900 does not: 2.4 starts a run of its own; section 7 fits whole.
    assert [g.label for g in groups] == ["2.1+2.3", "2.4", "7.1+7.2"]
    assert all(g.peak <= 768 * MB for g in groups)
    assert calls[0] == tuple(extra) and ("2.1", "2.3", "2.4") in calls
    assert len(lines) == len(calls) and "over" in lines[0] and "fits" in lines[-1]


def test_an_exercise_too_large_alone_is_named_with_its_peak():
    measure, _ = fake_peaks({"2.3": 100, "7.1": 600})
    too_large = r"exercise 7.1 alone takes 900 MB to grade, above --max-memory 768"
    with pytest.raises(BundleError, match=too_large):
        plan_bundles(exercises("2.3", "7.1"), 768 * MB, measure)


def test_zip_names_say_what_each_autograder_grades(tmp_path):
    out = tmp_path / "autograder.zip"
    section2 = tuple(ex for ex in CATALOG.exercises if ex.section == 2)
    whole = gradescope_memory.Group(section2, 0)
    part = gradescope_memory.Group(tuple(exercises("7.1", "7.2")), 0)
    assert group_output(out, whole, [whole], CATALOG) == out
    assert group_output(out, whole, [whole, part], CATALOG).name == "autograder-section2.zip"
    assert group_output(out, part, [whole, part], CATALOG).name == "autograder-7.1+7.2.zip"


def test_cli_writes_one_zip_per_group_and_says_so(tmp_path, monkeypatch, capsys):
    measure, _ = fake_peaks({"2.3": 300, "7.1": 300, "7.2": 400})
    monkeypatch.setattr(gradescope_memory, "measure_bundle", lambda catalog, chosen: _Peak(measure(chosen)))
    monkeypatch.chdir(PROJECT_ROOT)
    out = tmp_path / "autograder.zip"
    args = ["gradescope", "build", "-o", str(out), "--only", "2.3,7.1,7.2", "--max-memory", "768"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == ["autograder-2.3.zip", "autograder-7.1.zip", "autograder-7.2.zip"], printed
    with zipfile.ZipFile(tmp_path / "autograder-7.2.zip") as archive:
        catalog_text = archive.read("catalog.toml").decode()
    assert 'id = "7.2"' in catalog_text and 'id = "7.1"' not in catalog_text
    assert "upload each of these 3 zips" in printed and "grading peaks at 600 MB" in printed

    assert main([*args[:-1], "0"]) == 2
    assert "--max-memory 0: expected a positive number" in capsys.readouterr().out


class _Peak:
    def __init__(self, peak: int):
        self.peak = peak


def test_real_peak_of_grading_the_reference():
    """One real run: the reference of 2.3 graded by its unpacked autograder, sampled."""
    m = measure_bundle(CATALOG, exercises("2.3"))
    assert m.score == m.points == 20
    assert 150 * MB < m.peak < 2048 * MB, m
    assert tree_memory(os.getpid()) > 0  # this process is counted too
