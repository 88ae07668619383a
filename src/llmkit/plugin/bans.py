"""The ban test every exercise with ``banned`` calls gets, generated rather than copied.

When the hidden grader file of such an exercise (``graders/sectionN/test_<topic>.py``) is
collected, one more test joins it: ``test_no_library_shortcuts``, worth
:data:`BAN_POINTS` (count it in the catalog's ``points``). It is an ordinary test of that
file: the ``impl``, ``impl_files``, ``exercise`` and ``draw`` fixtures, one copy per
``--impl`` root, sandboxed under ``--sandbox``, hidden and reported with its points like
the file's own tests. It

1. scans the learner's source for the banned names
   (:func:`~llmkit.bans.assert_no_banned_mentions`: the static half of the ban), then
2. calls the learner's code once through the support module's
   ``check_one_call(impl, draw)``, which checks the answer against the oracle. The
   runtime trap is on during every test of the exercise, this one included; the call is
   what keeps a stub or a module that does nothing from earning the point.

A grader file must not define ``test_no_library_shortcuts`` itself: its collection
fails, naming the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llmkit.catalog import Exercise
from llmkit.plugin.state import STATE

NAME = "test_no_library_shortcuts"
BAN_POINTS = 1  # each exercise's catalog points count it
SUPPORT_CALL = "check_one_call"


def _banned_exercise_of(collector: pytest.Collector) -> Exercise | None:
    """The exercise with banned calls whose hidden grader file ``collector`` is, if any."""
    if not isinstance(collector, pytest.Module):
        return None
    catalog = collector.config.stash[STATE].catalog
    if catalog is None:
        return None
    path = Path(str(collector.path)).resolve()
    for ex in catalog.exercises:
        if ex.banned and (catalog.root / ex.grader).resolve() == path:
            return ex
    return None


def _ban_test(ex: Exercise, support_root: Path):
    """A fresh ``test_no_library_shortcuts`` for ``ex`` (its marks are its own)."""

    def test_no_library_shortcuts(impl, impl_files, exercise, draw):
        from llmkit.bans import assert_no_banned_mentions
        from llmkit.support import load_support

        assert_no_banned_mentions(impl_files, exercise.banned, exercise.id)
        support = load_support(exercise, support_root)
        check_one_call = getattr(support, SUPPORT_CALL, None)
        if check_one_call is None:
            pytest.fail(
                f"{exercise.support} defines no "
                f"{SUPPORT_CALL}(impl, draw): exercise {exercise.id} bans calls, and its generated "
                f"{NAME} makes one checked call of the learner's code through it",
                pytrace=False,
            )
        check_one_call(impl, draw)

    test_no_library_shortcuts.llmkit_generated = True
    test_no_library_shortcuts.__doc__ = (
        f"Generated for exercise {ex.id} (llmkit.plugin.bans): the static scan for banned names, then "
        f"one checked call of the learner's code ({SUPPORT_CALL}) with the runtime trap on."
    )
    return pytest.mark.points(BAN_POINTS)(pytest.mark.exercise(ex.id)(test_no_library_shortcuts))


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    ex = _banned_exercise_of(collector)
    clash = None
    if ex is not None:
        try:
            module = collector.obj  # imports the grader; a failure is reported by the collection below
        except (Exception, pytest.skip.Exception, pytest.fail.Exception):
            module = None
        own = getattr(module, NAME, None)
        if own is not None and not getattr(own, "llmkit_generated", False):
            clash = (
                f"{ex.grader} defines {NAME}, which the plugin generates for every exercise with "
                f"banned calls (llmkit.plugin.bans): delete it there"
            )
        elif module is not None and own is None:
            setattr(module, NAME, _ban_test(ex, collector.config.stash[STATE].catalog.root))
    report = yield
    if clash is not None and report.passed:
        report.outcome = "failed"
        report.longrepr = clash
        report.result = []
    return report
