"""How tests run: one implementation root after another, GPU tests skipped visibly
without a GPU, a mutant's tests stopped after its first loss, banned calls trapped."""

from __future__ import annotations

import pytest

from llmkit.impl import module_files
from llmkit.plugin.state import STATE, exercise_of
from llmkit.progress import NO_GPU


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash[STATE]
    if len(state.roots) > 1:
        # One root after another: a worker serves a root's tests in a row, and a mutant
        # that stops at its first loss skips the rest of its own tests.
        order = {id(root): i for i, root in enumerate(state.roots)}
        items.sort(key=lambda item: order[id(state.root_of(item))])
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if not torch.cuda.is_available():
        for item in items:
            if item.get_closest_marker("gpu"):
                item.add_marker(pytest.mark.skip(reason=NO_GPU))


def pytest_runtest_setup(item: pytest.Item) -> None:
    state = item.config.stash[STATE]
    root = state.root_of(item)
    if state.stop_at_first_loss and root is not None and root.label in state.lost:
        pytest.skip(f"not run: {root.label} already lost a point (--stop-at-first-loss)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Trap banned library calls from learner code while the test body runs."""
    ex = exercise_of(item)
    state = item.config.stash[STATE]
    root = state.root_of(item)
    module = root.loaded(ex) if ex is not None and root is not None else None
    if module is None or not ex.banned:
        return (yield)
    from llmkit.bans import BannedCallError, trap_banned_calls

    files = module_files(module)
    with trap_banned_calls(ex.banned, files, ex.id) as trap:
        result = yield
    if trap.calls:  # the learner caught the error and carried on
        raise BannedCallError(f"exercise {ex.id} bans calls your code made: {', '.join(trap.calls)}")
    return result
