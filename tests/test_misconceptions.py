"""Named misconceptions: a failed check says which known mistake its output matches, and
the same line reaches every place a learner reads feedback."""

import json

import pytest
import torch

from llmkit.catalog import load_catalog
from llmkit.misconceptions import Misconception, Misconceptions, diagnosed_slugs
from llmkit.testing import CheckFailure, assert_close, check_equal

from .conftest import PROJECT_ROOT

MISTAKES = Misconceptions(
    "exercises/section9/README.md",
    Misconception(
        "doubled", "output doubled", "scale once", readme="Scaling", variants={"f": lambda x: 2 * x}
    ),
    Misconception("negated", "sign flipped", "keep the sign", readme="Signs", variants={"f": lambda x: -x}),
    Misconception("crashes", "never matches", "-", readme="Signs", variants={"f": lambda x: 1 / 0}),
    Misconception(
        "listed", "reversed", "keep the order", readme="Order", variants={"g": lambda xs: xs[::-1]}
    ),
    Misconception("looped", "a Python loop", "batch it", readme="Speed", kind="speed"),
)


def failure_of(check) -> str:
    with pytest.raises(CheckFailure) as caught:
        check()
    return str(caught.value)


def test_the_first_variant_the_check_accepts_opens_the_message():
    x = torch.tensor([1.0, -2.0, 3.0])
    message = failure_of(lambda: assert_close(-x, x, name="f(x)", suspects=MISTAKES.on("f", x)))
    first, second = message.split("\n")[:2]
    where = 'exercises/section9/README.md, "Signs"'
    assert first == f"Likely mistake [negated]: sign flipped — keep the sign (see {where})"
    assert second.startswith("f(x): 3 of 3 elements differ")
    assert diagnosed_slugs(message) == ["negated"]


def test_no_diagnosis_when_no_variant_matches_or_when_it_raises():
    x = torch.tensor([1.0, -2.0, 3.0])
    message = failure_of(lambda: assert_close(x + 1, x, suspects=MISTAKES.on("f", x)))
    assert "Likely mistake" not in message and diagnosed_slugs(message) == []
    assert message.startswith("output: 3 of 3 elements differ")


def test_the_check_tolerance_applies_to_the_variant_too():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    nearly_doubled = 2 * x + 1e-12  # within float64's tolerance of 2x
    message = failure_of(lambda: assert_close(nearly_doubled, x, suspects=MISTAKES.on("f", x)))
    assert diagnosed_slugs(message) == ["doubled"]
    shape_only = failure_of(lambda: assert_close(torch.zeros(3), x, suspects=MISTAKES.on("f", x)))
    assert "wrong shape" in shape_only and "Likely mistake" not in shape_only


def test_a_passing_check_never_calls_a_variant():
    calls = []
    spy = Misconceptions("R.md", Misconception("spy", "s", "s", readme="S", variants={"f": calls.append}))
    x = torch.ones(2)
    assert_close(x.clone(), x, suspects=spy.on("f", x))
    assert calls == []


def test_check_equal_diagnoses_plain_values():
    message = failure_of(
        lambda: check_equal([3, 2, 1], [1, 2, 3], name="ids", suspects=MISTAKES.on("g", [1, 2, 3]))
    )
    assert diagnosed_slugs(message) == ["listed"]
    assert "ids:\n  got      [3, 2, 1]\n  expected [1, 2, 3]" in message
    check_equal({"a": 1}, {"a": 1})


def test_a_test_can_name_a_mistake_itself():
    failure = MISTAKES.failure("doubled", "weights left trainable", hint="freeze them")
    assert str(failure).startswith("Likely mistake [doubled]: output doubled")
    assert str(failure).endswith("weights left trainable\nHint: freeze them")


def test_declarations_are_checked():
    with pytest.raises(ValueError, match="declared twice: doubled"):
        Misconceptions("R.md", MISTAKES["doubled"], MISTAKES["doubled"])
    with pytest.raises(ValueError, match="kind 'style' is not one of"):
        Misconception("x", "x", "x", readme="X", kind="style")
    with pytest.raises(ValueError, match="lowercase words joined by _"):
        Misconception("No Scale", "x", "x", readme="X")
    with pytest.raises(KeyError, match="no misconception 'nope'; known: doubled, negated"):
        MISTAKES["nope"]


@pytest.mark.parametrize("exercise", load_catalog(PROJECT_ROOT).exercises, ids=lambda ex: ex.id)
def test_every_exercise_declares_its_mutants(exercise):
    from llmkit.authoring import misconceptions_of, mutant_files

    catalog = load_catalog(PROJECT_ROOT)
    declared = misconceptions_of(catalog, exercise)
    assert not isinstance(declared, str), declared
    slugs = {m.slug for m in declared}
    assert {path.stem.split("__", 1)[1] for path in mutant_files(catalog, exercise)} <= slugs


def test_the_diagnosis_reaches_every_feedback_channel(tmp_path):
    """A submission with the no_scale mistake, graded in the sandbox as instructors grade:
    the hidden graders' message names it, and so do the HTML, Gradescope and exercism feedback."""
    from llmkit.grading import grade_submission
    from llmkit.reports.exercism import exercism_results
    from llmkit.reports.gradescope import gradescope_results
    from llmkit.reports.html import write_feedback

    catalog = load_catalog(PROJECT_ROOT)
    ex = catalog.get("2.3")
    submission = tmp_path / "bob" / "section2"
    submission.mkdir(parents=True)
    reference = (PROJECT_ROOT / "solutions" / ex.module).read_text()
    mutant = (PROJECT_ROOT / "graders/mutants/section2/attention__no_scale.py").read_text()
    (submission / "attention.py").write_text(reference + "\n\n" + mutant)
    result = grade_submission(submission.parent, catalog, exercises=[ex], seed=5)
    named = [t for t in result.tests if "no_scale" in diagnosed_slugs(t.message)]
    assert named, json.dumps(result.to_json())[:3000]
    line = "Likely mistake [no_scale]: scores not scaled"
    write_feedback(result, catalog, tmp_path / "feedback.html")
    assert line in (tmp_path / "feedback.html").read_text()
    assert line in json.dumps(gradescope_results(result, catalog), ensure_ascii=False)
    assert line in json.dumps(exercism_results(result, catalog), ensure_ascii=False)
