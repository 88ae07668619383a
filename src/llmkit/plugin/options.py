"""Options, markers and the settings every run shares: the seed, the catalog and the
implementation roots, one thread for torch and BLAS, Triton's interpreter without a GPU,
and hypothesis's profile and seed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from llmkit.catalog import CatalogError, load_catalog
from llmkit.compute import configure_compute
from llmkit.impl import ImplementationError, ImplementationRoot, resolve_root
from llmkit.plugin.state import STATE, RunState

MARKERS = (
    "exercise(id): the catalog exercise a test belongs to",
    "points(n): points a hidden grader test is worth",
    "speed: grades speed as a ratio against a baseline measured in the same run",
    "gpu: needs a CUDA GPU; skipped with the reason 'not graded: no GPU' without one",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmkit", "llmkit exercise kit")
    group.addoption(
        "--impl",
        action="append",
        default=None,
        help="where the code under test comes from: exercises (default), solutions, "
        "a submission directory laid out like exercises/, or a mutant file; given "
        "several times, every test runs once on each (the author check)",
    )
    group.addoption(
        "--stop-at-first-loss",
        action="store_true",
        help="with several --impl: a mutant's remaining tests are skipped once it loses a point",
    )
    group.addoption("--seed", type=int, default=None, help="seed for random inputs (default: fresh, printed)")
    group.addoption(
        "--llmkit-report",
        default=None,
        metavar="PATH",
        help="write the canonical result JSON (llmkit.result/1)",
    )
    group.addoption("--submission-id", default=None, help="submission name recorded in the report")
    group.addoption(
        "--sandbox",
        action="store_true",
        help="run the code under test in sandboxed worker processes (instructor grading): "
        "tests get a remote handle, only plain data comes back",
    )


@pytest.hookimpl(tryfirst=True)  # before hypothesis's own plugin reads its options
def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    # Learners need the failing line, not dumps of every argument.
    if getattr(config.option, "tbstyle", None) == "auto":
        config.option.tbstyle = "short"
    seed = config.getoption("--seed")
    if seed is None:
        seed = random.SystemRandom().randrange(1, 2**31)
    catalog = catalog_error = None
    roots: list[ImplementationRoot] = []
    try:
        catalog = load_catalog(config.rootpath)
        specs = config.getoption("--impl") or ["exercises"]
        roots = [resolve_root(spec, catalog.root) for spec in dict.fromkeys(specs)]
    except CatalogError as exc:
        catalog_error = str(exc)
    except ImplementationError as exc:
        raise pytest.UsageError(str(exc)) from None
    if catalog is not None:
        configure_compute()
    stop_early = config.getoption("--stop-at-first-loss")
    state = config.stash[STATE] = RunState(catalog, catalog_error, roots, seed, stop_early)
    _configure_hypothesis(config, seed)
    report = config.getoption("--llmkit-report")
    if report:
        from llmkit.plugin.report import ReportWriter

        submission = config.getoption("--submission-id") or ", ".join(r.label for r in roots)
        config.pluginmanager.register(ReportWriter(Path(report), state, submission), "llmkit-report")
    if config.getoption("--sandbox") and catalog is not None:
        from llmkit.plugin.sandboxing import start_sandbox

        start_sandbox(catalog)


def _configure_hypothesis(config: pytest.Config, seed: int) -> None:
    """A profile for graders (no deadline, no example database, no explain phase), and
    the run's seed through hypothesis's own ``--hypothesis-seed`` unless one was given."""
    try:
        from hypothesis import HealthCheck, Phase, settings
    except ImportError:  # pragma: no cover
        return
    settings.register_profile(
        "llmkit",
        deadline=None,
        # No explain phase: its notes list engine source lines, not the learner's.
        phases=[p for p in Phase if p is not Phase.explain],
        database=None,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,  # impl is loaded once and not mutated by examples
        ],
    )
    settings.load_profile("llmkit")
    if getattr(config.option, "hypothesis_seed", "absent") is None:
        config.option.hypothesis_seed = str(seed)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[STATE]
    if not state.roots:
        return []
    labels = ", ".join(root.label for root in state.roots)
    return [f"llmkit: implementation {labels}, seed {state.seed} (replay: --seed {state.seed})"]
