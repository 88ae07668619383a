"""The author check on the real catalog, and proof that it can fail."""

import shutil

import pytest

from llmkit.authoring import check_exercise, mutant_files
from llmkit.catalog import load_catalog

from .conftest import PROJECT_ROOT

CATALOG = load_catalog(PROJECT_ROOT)


@pytest.mark.parametrize("exercise", CATALOG.exercises, ids=lambda ex: ex.id)
def test_exercise_passes_author_check(exercise):
    check = check_exercise(CATALOG, exercise)
    assert check.ok, "\n".join(check.problems)
    assert (
        len(check.mutants) == len(mutant_files(CATALOG, exercise)) >= 5
    )  # the issues ask for at least 5 realistic mutants per exercise
    for name, (points, total) in check.mutants.items():
        assert points < total, name


def test_a_mutant_that_changes_nothing_is_reported(project_copy):
    catalog = load_catalog(project_copy)
    ex = catalog.get("2.3")
    harmless = project_copy / "graders/mutants/section2/attention__harmless.py"
    harmless.write_text('"""Mutant with no bug: the reference as it is."""\n')
    check = check_exercise(catalog, ex, mutants=[harmless])
    assert not check.ok
    assert any(
        "attention__harmless.py scores 20/20, as much as the reference" in p for p in check.problems
    ), check.problems


def test_a_stub_that_passes_is_reported(project_copy):
    catalog = load_catalog(project_copy)
    ex = catalog.get("2.3")
    shutil.copy(project_copy / "solutions" / ex.module, project_copy / "exercises" / ex.module)
    check = check_exercise(catalog, ex, mutants=[])
    problems = "\n".join(check.problems)
    assert "the stub passes public tests" in problems
    assert "the stub scores 20 points" in problems


def test_points_that_disagree_with_the_catalog_are_reported(project_copy):
    catalog_file = project_copy / "catalog.toml"
    catalog_file.write_text(catalog_file.read_text().replace("points = 20", "points = 21"))
    catalog = load_catalog(project_copy)
    check = check_exercise(catalog, catalog.get("2.3"), mutants=[])
    assert any("graders are worth 20 points but the catalog says 21" in p for p in check.problems)
