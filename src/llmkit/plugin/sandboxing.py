"""The grading sandbox's lifetime: started with ``--sandbox`` when the run is configured,
told when each test ends, closed with the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmkit.catalog import Catalog


def start_sandbox(catalog: Catalog) -> None:
    """Learner code runs only in sandbox workers from here on (see :mod:`llmkit.sandbox`),
    in the jail that ``LLMKIT_JAIL`` names (the strongest available by default)."""
    import sys

    import llmkit
    from llmkit.sandbox import activate
    from llmkit.sandbox.session import Sandbox

    # The worker may read the interpreter's files and the engine, nothing else of the
    # project (solutions, graders), nor what LLMKIT_SANDBOX_PROTECT lists (other
    # submissions, the output directory).
    extra = [Path(p) for p in os.environ.get("LLMKIT_SANDBOX_PROTECT", "").split(os.pathsep) if p]
    engine = Path(llmkit.__file__).parent
    allowed = [Path(sys.prefix), Path(sys.base_prefix), engine]
    secret = [catalog.root / "solutions", catalog.root / "graders", *extra]
    from llmkit.sandbox.launch import JailUnavailable

    try:
        sandbox = Sandbox(protected=[catalog.root, *extra], allowed=allowed, secret=secret)
    except JailUnavailable as exc:
        raise pytest.UsageError(f"--sandbox: {exc}") from None
    sandbox.fork_server()  # imports torch while pytest collects the tests
    activate(sandbox)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    from llmkit.sandbox import active

    sandbox = active()
    if sandbox is not None:
        sandbox.end_test()  # the worker forgets this test's inputs


def pytest_unconfigure(config: pytest.Config) -> None:
    from llmkit.sandbox import activate, active

    sandbox = active()
    if sandbox is not None:
        sandbox.close()
        activate(None)
