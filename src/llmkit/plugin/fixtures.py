"""The fixtures tests use, and the implementation roots as a parameter of every test."""

from __future__ import annotations

import pytest

from llmkit.catalog import Exercise
from llmkit.draw import Draw, seed_for_test
from llmkit.failures import CheckFailure
from llmkit.impl import ImplementationError, ImplementationRoot, module_files
from llmkit.plugin.state import METRICS, STATE, exercise_of, unknown_exercise_message


@pytest.fixture
def exercise(request: pytest.FixtureRequest) -> Exercise:
    """The catalog entry of the exercise this test belongs to."""
    state = request.config.stash[STATE]
    if state.catalog_error:
        pytest.fail(state.catalog_error, pytrace=False)
    ex = exercise_of(request.node)
    if ex is None:
        unknown = unknown_exercise_message(request.node)
        pytest.fail(unknown or "this test has no @pytest.mark.exercise('N.M') marker", pytrace=False)
    return ex


@pytest.fixture
def impl_root(request: pytest.FixtureRequest) -> ImplementationRoot:
    """The implementation root of this test: the one --impl, or this run's parameter."""
    return getattr(request, "param", None) or request.config.stash[STATE].roots[0]


@pytest.fixture
def impl(request: pytest.FixtureRequest, exercise: Exercise, impl_root: ImplementationRoot):
    """The module under test, from the implementation root chosen with --impl."""
    from llmkit.sandbox import active

    sandbox = active()
    if sandbox is not None:
        try:
            return sandbox.module(
                exercise.id, impl_root.source_files(exercise), exercise.banned, exercise.preload
            )
        except (ImplementationError, CheckFailure) as exc:
            message = str(exc)
        pytest.fail(message, pytrace=False)  # outside the except: no chained traceback in the report
    loaded = impl_root.loaded(exercise)
    if loaded is not None:
        return loaded
    try:
        if not exercise.banned:
            return impl_root.load(exercise)
        # Trap banned names while the module imports too: a reference taken at import
        # time (f = F.softmax) is then the guard, and raises whenever learner code calls it.
        from llmkit.bans import trap_banned_calls

        with trap_banned_calls(exercise.banned, map(str, impl_root.files_for(exercise)), exercise.id):
            return impl_root.load(exercise)
    except ImplementationError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def draw(request: pytest.FixtureRequest) -> Draw:
    """Seeded random inputs; the seed derives from the run's seed and the test id."""
    return Draw(seed_for_test(request.config.stash[STATE].seed, request.node.nodeid))


@pytest.fixture
def record_metric(request: pytest.FixtureRequest):
    """``record_metric(name, value)`` stores a number with this test's result (e.g.
    ``speed_ratio`` for the speed leaderboard)."""
    metrics = request.node.stash.setdefault(METRICS, {})

    def record(name: str, value: float) -> None:
        metrics[name] = float(value)

    return record


@pytest.fixture
def impl_files(impl) -> tuple[str, ...]:
    """Source files of the module under test, in execution order (for static checks
    such as bans, or to load the same module in another process)."""
    return module_files(impl)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """With several --impl, every exercise test runs once per implementation root."""
    state = metafunc.config.stash[STATE]
    if len(state.roots) < 2 or metafunc.definition.get_closest_marker("exercise") is None:
        return
    if "impl_root" not in metafunc.fixturenames:
        metafunc.fixturenames.append("impl_root")
    ids = [root.short_label for root in state.roots]
    metafunc.parametrize("impl_root", state.roots, indirect=True, ids=ids)
