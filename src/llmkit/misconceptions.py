"""Named misconceptions: a failed check says which known mistake the learner's output looks like.

An exercise declares its known mistakes in its support module (which ships to learners)::

    MISCONCEPTIONS = Misconceptions(
        "exercises/section2/README.md",
        Misconception(
            "no_scale",
            "scores not scaled",
            "q @ k^T must be divided by sqrt(d) before the softmax",
            readme="Scaling the scores",
            variants={"scaled_dot_product_attention": lambda q, k, v, mask=None, is_causal=False:
                      attention(q, k, v, mask, is_causal, scale=1.0)},
        ),
        Misconception("loop_over_queries", "a loop over query rows", "...", readme="Speed", kind="speed"),
    )

A *variant* computes what the mistaken implementation would return, from the exercise's
oracles and library calls, never from the reference solution. A check given
``suspects=MISCONCEPTIONS.on("scaled_dot_product_attention", q, k, v)`` evaluates them
only when it fails; the first that the check would have accepted opens the message::

    Likely mistake [no_scale]: scores not scaled — q @ k^T must be divided by sqrt(d)
    before the softmax (see exercises/section2/README.md, "Scaling the scores")

A test that recognises a mistake without a variant (a flag left unset, a parameter left
trainable) raises ``MISCONCEPTIONS.failure("base_left_trainable", message)``.

Each mutant ``graders/mutants/sectionN/<topic>__<slug>.py`` is one of these, by slug. The
author check holds them to it: a correctness mutant fails a public test whose message
names its slug; a speed or memory mutant loses points with "too slow" or "too much memory".

No torch here: a check passes its own comparison to :meth:`Suspects.first_match`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmkit.failures import CheckFailure

KINDS = ("correctness", "speed", "memory")
# What a speed or memory mutant's failure must say (the engine's speed and memory checks do).
KIND_WORDS = {"speed": "too slow", "memory": "too much memory"}
DIAGNOSIS = re.compile(r"^Likely mistake \[(?P<slug>\w+)\]", re.MULTILINE)
SLUG = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Misconception:
    """One known mistake. ``slug`` names its mutant file (``<topic>__<slug>.py``)."""

    slug: str
    name: str  # a few words, as the learner would say it
    explanation: str  # one line: what is wrong and what is right
    readme: str  # the heading of the section README that explains it
    variants: Mapping[str, Callable[..., Any]] = field(default_factory=dict)  # checked function -> mistake
    kind: str = "correctness"

    def __post_init__(self):
        if not SLUG.match(self.slug):
            raise ValueError(f"misconception slug {self.slug!r}: lowercase words joined by _")
        if self.kind not in KINDS:
            raise ValueError(f"misconception {self.slug}: kind {self.kind!r} is not one of {KINDS}")


class Misconceptions:
    """An exercise's known mistakes, and where its README explains them."""

    def __init__(self, readme: str, *items: Misconception):
        self.readme = readme
        self.items = items
        slugs = [m.slug for m in items]
        repeated = sorted({s for s in slugs if slugs.count(s) > 1})
        if repeated:
            raise ValueError(f"misconceptions declared twice: {', '.join(repeated)}")
        self._by_slug = dict(zip(slugs, items))

    def __getitem__(self, slug: str) -> Misconception:
        try:
            return self._by_slug[slug]
        except KeyError:
            raise KeyError(f"no misconception {slug!r}; known: {', '.join(self._by_slug)}") from None

    def __iter__(self):
        return iter(self.items)

    def line(self, slug: str) -> str:
        """The diagnosis line a failure message opens with."""
        m = self[slug]
        return f'Likely mistake [{m.slug}]: {m.name} — {m.explanation} (see {self.readme}, "{m.readme}")'

    def failure(self, slug: str, message: str, hint: str | None = None) -> CheckFailure:
        """A failure that names ``slug``, for a test that recognises the mistake itself."""
        return CheckFailure(f"{self.line(slug)}\n{message}", hint=hint)

    def on(self, target: str, *args, **kwargs) -> Suspects:
        """The mistakes with a variant of ``target``, to be evaluated on these inputs if a
        check fails (lazily: a passing check costs nothing)."""
        return Suspects(self, target, args, kwargs)


@dataclass
class Suspects:
    misconceptions: Misconceptions
    target: str
    args: tuple
    kwargs: dict

    def first_match(self, accepts: Callable[[Any], bool]) -> str | None:
        """The diagnosis line of the first mistake whose output ``accepts`` takes, else None.
        A variant that raises (it cannot handle these inputs) is passed over."""
        for m in self.misconceptions:
            variant = m.variants.get(self.target)
            if variant is None:
                continue
            try:
                matched = accepts(variant(*self.args, **self.kwargs))
            except Exception:  # noqa: BLE001 - a variant outside its domain diagnoses nothing
                continue
            if matched:
                return self.misconceptions.line(m.slug)
        return None


def diagnosed_slugs(message: str) -> list[str]:
    """The slugs a failure message names as likely mistakes."""
    return [m["slug"] for m in DIAGNOSIS.finditer(message or "")]
