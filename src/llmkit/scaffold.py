"""``llmkit new``: the files of a new exercise, ready to be written.

It writes the mirror files (stub, public tests, reference, graders), the support
module, five mutant files, a README section and a catalog entry. Everything passes
the author check's structural rules at once and fails the rest of it until the
author has written it: the reference raises NotImplementedError, and the mutants
change nothing. CONTRIBUTING.md walks through each file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from llmkit.catalog import (
    CATALOG_FILE,
    DIFFICULTIES,
    EXERCISE_ID,
    TRACKS,
    Catalog,
    CatalogError,
    load_catalog,
    reload_catalog,
)

TOPIC = re.compile(r"^[a-z][a-z0-9_]*$")
MUTANT_SLOTS = 5


class ScaffoldError(Exception):
    """The new exercise would clash with the kit or is not well named."""


def _files(ex_id: str, section: int, topic: str, title: str, points: int) -> dict[str, str]:
    s = f"section{section}"
    stub_doc = f'''"""Exercise {ex_id}: {title}.

TODO(author): what the learner builds, in their words: the functions below,
their shapes and dtypes, the conventions where libraries disagree, and what is
banned. `llmkit hint {ex_id}` gives the catalog's hints.
"""
'''
    api = '''

def solve(x: float) -> float:
    """TODO(author): the learner-facing docstring of the function to write."""
    raise NotImplementedError("{what}")
'''
    public = f'''"""Public tests for exercise {ex_id} ({title}). Run: pytest exercises/{s}

TODO(author): small, fast checks (hypothesis with a few examples) that catch every
correctness mutant and name it: pass suspects=support.MISCONCEPTIONS.on(...) to
each check (see CONTRIBUTING.md).
"""

import pytest

from llmkit.testing import check_equal, load_support

pytestmark = pytest.mark.exercise("{ex_id}")
support = load_support("{ex_id}")


def test_solve_matches_the_oracle(impl, draw):
    x = draw.tensor(1).item()
    suspects = support.MISCONCEPTIONS.on("solve", x)
    check_equal(impl.solve(x), support.oracle(x), name=f"solve({{x}})", suspects=suspects)
'''
    grader = f'''"""Hidden graders for exercise {ex_id} ({title}): {points} points.

TODO(author): property-based and edge cases against an independent oracle (a
well-kept library where one exists), with points on every test.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmkit.testing import load_support

pytestmark = pytest.mark.exercise("{ex_id}")
support = load_support("{ex_id}")


@pytest.mark.points({points})
@given(x=st.floats(-10, 10))
def test_solve_matches_the_oracle(impl, x):
    assert impl.solve(x) == support.oracle(x)
'''
    mistakes = "".join(
        f'''    Misconception(
        "todo_{i}",
        "TODO(author): the mistake in a few words",
        "TODO(author): what is wrong and what is right, in one line",
        readme="{ex_id} — Common mistakes",
        variants={{}},  # TODO(author): {{"solve": what this mistake returns, from the oracle}}
    ),
'''
        for i in range(1, MUTANT_SLOTS + 1)
    )
    support = f'''"""Support for exercise {ex_id} ({title}): what its public tests, graders,
notebook and `llmkit show` share. It ships to learners: nothing here may solve
the exercise (no reference code; oracles are library calls or obviously-correct
formulas, and so are the misconceptions' variants).
"""

from llmkit.testing import Misconception, Misconceptions


def oracle(x: float) -> float:
    """TODO(author): the independent oracle the tests compare against."""
    raise NotImplementedError("TODO(author): the oracle of exercise {ex_id}")


# One per mutant (graders/mutants/{s}/{topic}__<slug>.py), named by its slug.
MISCONCEPTIONS = Misconceptions(
    "exercises/{s}/README.md",
{mistakes})


def figure(impl):
    """TODO(author): the picture of ``impl`` (the learner's module) at work, for the
    notebook and `llmkit show`: (png bytes, caption)."""
    raise NotImplementedError("TODO(author): the figure of exercise {ex_id}")
'''
    files = {
        f"exercises/{s}/{topic}.py": stub_doc + api.format(what=f"exercise {ex_id}: write solve()"),
        f"solutions/{s}/{topic}.py": stub_doc.replace(
            "TODO(author): what the learner", "Reference: what the learner"
        )
        + api.format(what="TODO(author): the reference solution"),
        f"exercises/{s}/test_{topic}.py": public,
        f"graders/{s}/test_{topic}.py": grader,
        f"exercises/support/{s}/{topic}.py": support,
    }
    for i in range(1, MUTANT_SLOTS + 1):
        files[
            f"graders/mutants/{s}/{topic}__todo_{i}.py"
        ] = f'''"""Mutant: TODO(author): a mistake learners really make, in one line.

Misconception: TODO(author): why a learner would write it. Rename this file to
{topic}__<the_bug>.py and redefine only what carries the bug; the reference's
other definitions run first (see CONTRIBUTING.md).
"""
'''
    return files


def _catalog_entry(ex_id: str, module: str, title: str, difficulty: str, track: str, points: int) -> str:
    return f'''
[[exercise]]
id = "{ex_id}"
module = "{module}"
title = {json.dumps(title)}
difficulty = "{difficulty}"
track = "{track}"
points = {points}
summary = "TODO(author): one sentence: the API and what it must get right."
hints = ["TODO(author): a first hint that names the idea, not the code."]
resources = [
    {{ title = "TODO(author): the curriculum's resource for this topic", url = "https://example.org" }},
]
'''


def _readme_section(ex_id: str, section_title: str, section: int) -> tuple[str, str]:
    """(the README for a section without one, the sections to append for the exercise)."""
    fresh = (
        f"# Section {section} — {section_title}\n\n"
        "<!-- llmkit:exercises:start -->\n<!-- llmkit:exercises:end -->\n"
    )
    own = "\n".join(
        f"## {ex_id} — {heading}\n\nTODO(author): {what}\n"
        for heading, what in (
            ("Why it matters", "why this matters, from the curriculum (link its section)."),
            ("What you build", "the functions, and the conventions the stub states."),
            ("How it connects", "the exercises before and after this one."),
            ("Checking your work", "the command, and what a failure looks like."),
        )
    )
    own += f"\n### {ex_id} — Common mistakes\n\nTODO(author): one paragraph per misconception.\n"
    return fresh, "\n" + own


def new_exercise(
    ex_id: str,
    topic: str,
    title: str,
    *,
    difficulty: str = "basic",
    track: str = "beginner",
    points: int = 10,
    catalog: Catalog | None = None,
) -> list[Path]:
    """Write exercise ``ex_id`` (``section<N>/<topic>.py``) into the kit; return the files written."""
    catalog = catalog or load_catalog()
    root = catalog.root
    match = EXERCISE_ID.match(ex_id)
    if not match:
        raise ScaffoldError(f"{ex_id!r} is not an exercise id like 2.3 or 1.2a")
    if not TOPIC.match(topic):
        raise ScaffoldError(f"{topic!r} is not a module name (lower case letters, digits and _)")
    if difficulty not in DIFFICULTIES or track not in TRACKS:
        raise ScaffoldError(f"difficulty is one of {DIFFICULTIES}, track one of {TRACKS}")
    section = int(match["section"])
    titles = {s.number: s.title for s in catalog.sections}
    if section not in titles:
        raise ScaffoldError(f"{CATALOG_FILE} has no section {section}")
    try:
        catalog.get(ex_id)
        raise ScaffoldError(f"{CATALOG_FILE} already has exercise {ex_id}")
    except CatalogError:
        pass
    module = f"section{section}/{topic}.py"
    if any(ex.topic == topic for ex in catalog.exercises):
        raise ScaffoldError(f"another exercise already uses the topic {topic!r}")
    files = _files(ex_id, section, topic, title, points)
    clashes = [path for path in files if (root / path).exists()]
    if clashes:
        raise ScaffoldError(f"these files exist already: {', '.join(clashes)}")
    written = []
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    readme = root / "exercises" / f"section{section}" / "README.md"
    fresh, own = _readme_section(ex_id, titles[section], section)
    readme.write_text(
        (readme.read_text(encoding="utf-8") if readme.exists() else fresh) + own, encoding="utf-8"
    )
    with open(root / CATALOG_FILE, "a", encoding="utf-8") as fh:
        fh.write(_catalog_entry(ex_id, module, title, difficulty, track, points))
    written += [readme, root / CATALOG_FILE]
    from llmkit.docs import stale_files

    stale_files(reload_catalog(root), write=True)  # the generated README headers and tables
    return written
