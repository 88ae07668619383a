"""The author check on the real catalog, and proof that it can fail."""

import shutil

import pytest

from llmkit.authoring import AuthoringRules, check_catalog, check_exercise, mutant_files, structure_problems
from llmkit.catalog import load_catalog

from .conftest import PROJECT_ROOT

CATALOG = load_catalog(PROJECT_ROOT)


@pytest.fixture(scope="module")
def catalog_checks():
    """One author check of the whole catalog, its pytest processes spread over the cores."""
    return {check.exercise.id: check for check in check_catalog(CATALOG)}


@pytest.mark.parametrize("exercise", CATALOG.exercises, ids=lambda ex: ex.id)
def test_exercise_passes_author_check(exercise, catalog_checks):
    check = catalog_checks[exercise.id]
    assert check.ok, "\n".join(check.problems)
    assert sorted(check.mutants) == [m.name for m in mutant_files(CATALOG, exercise)]
    for name, (points, total) in check.mutants.items():
        assert points < total, name


DOUBLED = """
_reference_sdpa = scaled_dot_product_attention


def scaled_dot_product_attention(q, k, v, mask=None, is_causal=False):
    return 2 * _reference_sdpa(q, k, v, mask=mask, is_causal=is_causal)
"""


def test_broken_stub_mutants_and_points_are_each_reported(project_copy):
    """One run over a copy broken in six ways: a stub that is the reference; a mutant that
    changes nothing and declares no misconception; a correctness mutant the public tests
    cannot see; one they catch without naming it; a speed mutant that loses its points for
    something else than speed; catalog points that disagree with the graders."""
    ex = CATALOG.get("2.3")
    shutil.copy(project_copy / "solutions" / ex.module, project_copy / "exercises" / ex.module)
    mutants = project_copy / "graders/mutants/section2"
    harmless = mutants / "attention__harmless.py"
    harmless.write_text('"""Mutant with no bug: the reference as it is."""\n')
    unseen = mutants / "attention__mask_inverted.py"  # a declared mistake, but no bug in it
    unseen.write_text('"""The reference as it is."""\n')
    unnamed = mutants / "attention__no_scale.py"  # wrong, but not the way no_scale is
    unnamed.write_text(DOUBLED)
    slow_for_no_reason = mutants / "attention__loop_over_rows.py"  # a speed mistake, wrong numbers
    slow_for_no_reason.write_text(DOUBLED)
    catalog_file = project_copy / "catalog.toml"
    text = catalog_file.read_text()
    start = text.index('id = "2.3"')
    catalog_file.write_text(text[:start] + text[start:].replace("points = 20", "points = 21", 1))
    catalog = load_catalog(project_copy)
    check = check_exercise(
        catalog, catalog.get("2.3"), mutants=[harmless, unseen, unnamed, slow_for_no_reason]
    )
    problems = "\n".join(check.problems)
    assert "the stub passes public tests" in problems
    assert "the stub scores 20 points" in problems
    assert "mutant attention__harmless.py scores 20/20, as much as the reference" in problems
    assert "mutant attention__harmless.py: no misconception 'harmless'" in problems
    assert "mutant attention__mask_inverted.py passes every public test" in problems
    assert (
        "mutant attention__no_scale.py: no failing public test names it (Likely mistake [no_scale]"
        in problems
    )
    assert "mutant attention__loop_over_rows.py (speed): no lost grader point says 'too slow'" in problems
    assert "catalog.toml: 2.3 is worth 21 points but its graders add up to 20" in problems


def test_structural_rules_name_the_file_to_change(project_copy):
    catalog = load_catalog(project_copy)
    ex = catalog.get("2.3")
    (project_copy / ex.grader).unlink()
    readme = project_copy / "exercises/section2/README.md"
    readme.write_text(readme.read_text().replace("<!-- llmkit:exercises:start -->", ""))
    readme.write_text(readme.read_text() + "\n## 2.9 — Not here\n\ntext\n\n## 2.3 Why, badly\n")
    support = project_copy / "exercises/support/section2/attention.py"
    support.write_text(support.read_text().replace("def figure(", "def picture("))
    mutants = mutant_files(catalog, ex)[:3]
    problems = structure_problems(catalog, ex, AuthoringRules(min_mutants=5), mutants)
    assert problems == [
        "graders/section2/test_attention.py: missing (the hidden graders of 2.3)",
        "graders/mutants/section2/: 3 mutants named attention__<bug>.py, at least 5 wanted "
        "(pyproject.toml [tool.llmkit.authoring] min_mutants)",
        "exercises/support/section2/attention.py: define figure(impl) "
        "(the notebook's and `llmkit show`'s picture)",
        "exercises/section2/README.md: no <!-- llmkit:exercises:start --> / end markers "
        "(the generated exercise headers go there; then run `llmkit docs --write`)",
    ]
    readme.write_text(
        readme.read_text().replace(
            "\n\n## Exercise 2.1", "\n<!-- llmkit:exercises:start -->\n## Exercise 2.1", 1
        )
    )
    problems = structure_problems(catalog, ex, AuthoringRules(min_mutants=5), mutants)
    assert problems[-2:] == [
        "exercises/section2/README.md: heading '## 2.9 — Not here' names no exercise of this section",
        "exercises/section2/README.md: heading '## 2.3 Why, badly': write it as '## <id> — <title>'",
    ]
    assert not check_exercise(catalog, ex).ok  # and the check stops there, without running pytest


def test_tests_that_import_the_sandbox_are_named(project_copy):
    """Graders and public tests reach the engine through llmkit.testing, never llmkit.sandbox."""
    catalog = load_catalog(project_copy)
    ex = catalog.get("2.1")
    rules, mutants = AuthoringRules(), mutant_files(catalog, ex)
    assert structure_problems(catalog, ex, rules, mutants) == []
    grader, public = project_copy / ex.grader, project_copy / ex.public_test
    grader.write_text("from llmkit.sandbox.script import run_learner_script\n" + grader.read_text())
    public.write_text(public.read_text() + '\nSCRIPT = "import llmkit.sandbox"  # a string, not an import\n')
    assert structure_problems(catalog, ex, rules, mutants) == [
        "graders/section2/test_bpe.py: imports llmkit.sandbox; use llmkit.testing"
    ]
    public.write_text(public.read_text() + "\n\ndef later():\n    import llmkit.sandbox as sandbox\n")
    assert structure_problems(catalog, ex, rules, mutants) == [
        "exercises/section2/test_bpe.py: imports llmkit.sandbox; use llmkit.testing",
        "graders/section2/test_bpe.py: imports llmkit.sandbox; use llmkit.testing",
    ]


def test_rules_come_from_pyproject(project_copy):
    assert AuthoringRules.load(PROJECT_ROOT).min_mutants == 5
    pyproject = project_copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("min_mutants = 5", "min_mutants = 7\nmax_mutants = 9"))
    with pytest.raises(ValueError, match="unknown keys max_mutants"):
        AuthoringRules.load(project_copy)
