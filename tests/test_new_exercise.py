"""Adding an exercise touches only its own files: ``llmkit new`` in a copy of the kit,
the author's files written, then the author check, the nbgrader build and sandboxed
grading all pass with the engine as installed (nothing under src/ is in the copy)."""

import json

import pytest

from llmkit.authoring import AuthoringRules, check_exercise, mutant_files, structure_problems
from llmkit.catalog import load_catalog, reload_catalog
from llmkit.scaffold import ScaffoldError, new_exercise

from .conftest import copy_project

ID, TOPIC = "0.9", "unigram"

STUB = '''"""Exercise 0.9: unigram probabilities with add-k smoothing."""


def unigram_probs(tokens: list[str], k: float = 0.0) -> dict[str, float]:
    """P(w) = (count(w) + k) / (N + k * V) for every distinct token w (N tokens, V distinct)."""
    raise NotImplementedError("exercise 0.9: write unigram_probs()")
'''
REFERENCE = '''"""Exercise 0.9: unigram probabilities with add-k smoothing."""

from collections import Counter


def unigram_probs(tokens: list[str], k: float = 0.0) -> dict[str, float]:
    counts = Counter(tokens)
    total = len(tokens) + k * len(counts)
    return {w: (c + k) / total for w, c in counts.items()}
'''
SUPPORT = '''"""Support for exercise 0.9: the formula, written out, its mistakes, the figure."""

import torch

from llmkit.figures import new_figure, png
from llmkit.testing import Misconception, Misconceptions


def unigram_probs(tokens, k=0.0, rule=None):
    """The probabilities in sorted word order; ``rule(count, k, n_tokens, n_types)`` is a mistake's."""
    vocab = sorted(set(tokens))
    rule = rule or (lambda c, k, n, v: (c + k) / (n + k * v))
    probs = [rule(tokens.count(w), k, len(tokens), len(vocab)) for w in vocab]
    return torch.tensor(probs, dtype=torch.float64)


def as_vector(probs):
    return torch.tensor([probs[w] for w in sorted(probs)], dtype=torch.float64)


def mistake(slug, rule):
    return Misconception(
        slug, slug.replace("_", " "), "P(w) = (count + k) / (N + k V)", readme="0.9 — Common mistakes",
        variants={"unigram_probs": lambda tokens, k: unigram_probs(tokens, k, rule)},
    )


MISCONCEPTIONS = Misconceptions(
    "exercises/section0/README.md",
    mistake("k_ignored", lambda c, k, n, v: c / n),
    mistake("k_on_top_only", lambda c, k, n, v: (c + k) / n),
    mistake("divided_by_vocab", lambda c, k, n, v: (c + k) / v),
    mistake("k_per_token_not_type", lambda c, k, n, v: (c + k) / (n + k * n)),
    mistake("counts_not_probs", lambda c, k, n, v: float(c + k)),
)


def figure(impl):
    probs = impl.unigram_probs("the cat sat on the mat the end".split(), k=1.0)
    fig, ax = new_figure(4.0, 2.5)
    ax.bar(list(probs), list(probs.values()))
    return png(fig), "Add-one unigram probabilities of a tiny corpus"
'''
PUBLIC = """import pytest

from llmkit.testing import assert_close, load_support

pytestmark = pytest.mark.exercise("0.9")
support = load_support("0.9")


@pytest.mark.parametrize("k", [0.0, 0.5])
def test_small_corpus(impl, k):
    tokens = "a b a c a b d".split()
    assert_close(
        support.as_vector(impl.unigram_probs(tokens, k)),
        support.unigram_probs(tokens, k),
        name=f"unigram_probs(k={k})",
        suspects=support.MISCONCEPTIONS.on("unigram_probs", tokens, k),
    )
"""
GRADER = """import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmkit.testing import assert_close, load_support

pytestmark = pytest.mark.exercise("0.9")
support = load_support("0.9")
corpora = st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=30)


@pytest.mark.points(6)
@given(tokens=corpora, k=st.sampled_from([0.0, 0.1, 1.0, 2.5]))
def test_matches_the_formula(impl, tokens, k):
    got = impl.unigram_probs(tokens, k)
    assert sorted(got) == sorted(set(tokens))
    assert_close(support.as_vector(got), support.unigram_probs(tokens, k), rtol=1e-12, atol=1e-12)


@pytest.mark.points(4)
@given(tokens=corpora, k=st.sampled_from([0.0, 1.0]))
def test_sums_to_one(impl, tokens, k):
    assert abs(sum(impl.unigram_probs(tokens, k).values()) - 1) < 1e-9
"""
MUTANTS = {
    "k_ignored": "(c) / len(tokens)",
    "k_on_top_only": "(c + k) / len(tokens)",
    "divided_by_vocab": "(c + k) / len(counts)",
    "k_per_token_not_type": "(c + k) / (len(tokens) + k * len(tokens))",
    "counts_not_probs": "c + k",
}


def write_exercise(root):
    (root / f"exercises/section0/{TOPIC}.py").write_text(STUB)
    (root / f"solutions/section0/{TOPIC}.py").write_text(REFERENCE)
    (root / f"exercises/support/section0/{TOPIC}.py").write_text(SUPPORT)
    (root / f"exercises/section0/test_{TOPIC}.py").write_text(PUBLIC)
    (root / f"graders/section0/test_{TOPIC}.py").write_text(GRADER)
    for placeholder in (root / "graders/mutants/section0").glob(f"{TOPIC}__todo_*.py"):
        placeholder.unlink()
    for bug, value in MUTANTS.items():
        (root / f"graders/mutants/section0/{TOPIC}__{bug}.py").write_text(
            f'"""Mutant: {bug.replace("_", " ")}."""\n\n\n'
            "def unigram_probs(tokens, k=0.0):\n"
            "    counts = Counter(tokens)\n"
            f"    return {{w: {value} for w, c in counts.items()}}\n"
        )


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("kit") / "kit")
    written = new_exercise(ID, TOPIC, "Unigram probabilities", points=10, catalog=load_catalog(root))
    return root, written


def test_new_writes_the_mirror_files_and_passes_the_structural_rules(scaffolded):
    root, written = scaffolded
    names = {p.relative_to(root).as_posix() for p in written}
    assert {
        f"exercises/section0/{TOPIC}.py",
        f"exercises/section0/test_{TOPIC}.py",
        f"exercises/support/section0/{TOPIC}.py",
        f"solutions/section0/{TOPIC}.py",
        f"graders/section0/test_{TOPIC}.py",
        "exercises/section0/README.md",
        "catalog.toml",
    } <= names
    catalog = reload_catalog(root)
    ex = catalog.get(ID)
    assert ex.module == f"section0/{TOPIC}.py" and ex.points == 10
    rules = AuthoringRules.load(root)
    assert structure_problems(catalog, ex, rules, mutant_files(catalog, ex)) == []
    readme = (root / "exercises/section0/README.md").read_text()
    assert "## Exercise 0.9: Unigram probabilities" in readme and "## 0.9 — Why it matters" in readme
    with pytest.raises(ScaffoldError, match="already has exercise 0.9"):
        new_exercise(ID, "other", "Again", catalog=catalog)


def test_an_unwritten_exercise_fails_the_author_check(scaffolded):
    root, _ = scaffolded
    catalog = reload_catalog(root)
    check = check_exercise(catalog, catalog.get(ID))
    problems = "\n".join(check.problems)
    assert "the reference fails" in problems
    assert "as much as the reference" in problems or "the reference scores 0" in problems


def test_a_written_exercise_passes_the_author_check_builds_and_grades(scaffolded, tmp_path):
    root, _ = scaffolded
    write_exercise(root)
    catalog = reload_catalog(root)
    ex = catalog.get(ID)
    check = check_exercise(catalog, ex)
    assert check.ok, "\n".join(check.problems)
    assert len(check.mutants) == 5 and all(points < total for points, total in check.mutants.values())

    from llmkit.nbgrader.build import build_course

    course = build_course(tmp_path / "course", catalog, exercise_ids=[ID])
    assert [nb.exercise.id for nb in course.notebooks] == [ID] and course.notebooks[0].path.is_file()
    assert course.notebooks[0].points == 10

    from llmkit.grading import grade_submission

    submission = tmp_path / "alice" / "section0"
    submission.mkdir(parents=True)
    (submission / f"{TOPIC}.py").write_text(REFERENCE)
    result = grade_submission(submission.parent, catalog, exercises=[ex], seed=3)
    assert (result.points, result.max_points) == (10, 10), json.dumps(result.to_json())[:2000]
