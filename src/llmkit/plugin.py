"""The pytest plugin (registered through the ``pytest11`` entry point).

It gives tests the module under test (``impl``), seeded inputs (``draw``) and
the catalog entry (``exercise``); turns a stub's NotImplementedError into
"not started"; prints check failures without engine tracebacks; traps banned
calls; skips GPU tests visibly; and ends the run with a per-exercise table.
``--llmkit-report PATH`` writes the canonical per-run JSON result.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

from llmkit.catalog import Catalog, CatalogError, Exercise, load_catalog
from llmkit.checks import CheckFailure
from llmkit.draw import Draw, seed_for_test
from llmkit.impl import ImplementationError, ImplementationRoot, module_files, resolve_root
from llmkit.result import ExerciseResult, SubmissionResult, TestResult

ENGINE_DIR = str(Path(__file__).resolve().parent)
MARKERS = (
    "exercise(id): the catalog exercise a test belongs to",
    "points(n): points a hidden grader test is worth",
    "speed: grades speed as a ratio against a baseline measured in the same run",
    "gpu: needs a CUDA GPU; skipped with the reason 'not graded: no GPU' without one",
)
NO_GPU = "not graded: no GPU"


@dataclass
class RunState:
    catalog: Catalog | None
    catalog_error: str | None
    root: ImplementationRoot | None
    seed: int
    results: dict[str, TestResult] = field(default_factory=dict)


STATE = pytest.StashKey[RunState]()
METRICS = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmkit", "llmkit exercise kit")
    group.addoption(
        "--impl",
        default=None,
        help="where the code under test comes from: exercises (default), solutions, "
        "a submission directory laid out like exercises/, or a mutant file",
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


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    # Learners need the failing line, not dumps of every argument.
    if getattr(config.option, "tbstyle", None) == "auto":
        config.option.tbstyle = "short"
    seed = config.getoption("--seed")
    if seed is None:
        seed = random.SystemRandom().randrange(1, 2**31)
    catalog = catalog_error = root = None
    try:
        catalog = load_catalog(config.rootpath)
        root = resolve_root(config.getoption("--impl"), catalog.root)
    except CatalogError as exc:
        catalog_error = str(exc)
    except ImplementationError as exc:
        raise pytest.UsageError(str(exc)) from None
    if catalog is not None:
        # One thread for torch and for numpy's BLAS: exercise-sized ops gain nothing from
        # threads, and on busy shared machines idle workers made timings vary 10-100x.
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(1)
        threadpool_limits(1)
        if not torch.cuda.is_available():
            # Triton kernels run on the CPU through Triton's interpreter, which must be
            # chosen before triton is imported.
            os.environ.setdefault("TRITON_INTERPRET", "1")
    config.stash[STATE] = RunState(catalog, catalog_error, root, seed)
    if config.getoption("--sandbox") and catalog is not None:
        _start_sandbox(catalog)


def _start_sandbox(catalog: Catalog) -> None:
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
    secret = [catalog.root / "solutions", catalog.root / "graders", engine / "oracles", *extra]
    from llmkit.sandbox.launch import JailUnavailable

    try:
        sandbox = Sandbox(protected=[catalog.root, *extra], allowed=allowed, secret=secret)
    except JailUnavailable as exc:
        raise pytest.UsageError(f"--sandbox: {exc}") from None
    sandbox.fork_server()  # imports torch while pytest collects the tests
    activate(sandbox)


def pytest_unconfigure(config: pytest.Config) -> None:
    from llmkit.sandbox import activate, active

    sandbox = active()
    if sandbox is not None:
        sandbox.close()
        activate(None)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Seed hypothesis from the run's seed (unless --hypothesis-seed was given) and
    make its examples independent of any local database."""
    try:
        from hypothesis import HealthCheck, Phase, core, settings
    except ImportError:  # pragma: no cover
        return
    state = session.config.stash[STATE]
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
    if session.config.getoption("hypothesis_seed", None) is None:
        core.global_force_seed = state.seed


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[STATE]
    if state.root is None:
        return []
    return [f"llmkit: implementation {state.root.label}, seed {state.seed} (replay: --seed {state.seed})"]


# --- fixtures ----------------------------------------------------------------


def _exercise_of(item: pytest.Item) -> Exercise | None:
    marker = item.get_closest_marker("exercise")
    state = item.config.stash[STATE]
    if marker is None or state.catalog is None:
        return None
    try:
        return state.catalog.get(marker.args[0])
    except CatalogError:
        return None  # the exercise fixture reports it


def _unknown_exercise_message(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("exercise")
    state = item.config.stash[STATE]
    if marker is None or state.catalog is None:
        return None
    try:
        state.catalog.get(marker.args[0])
    except CatalogError as exc:
        return str(exc)
    return None


@pytest.fixture
def exercise(request: pytest.FixtureRequest) -> Exercise:
    """The catalog entry of the exercise this test belongs to."""
    state = request.config.stash[STATE]
    if state.catalog_error:
        pytest.fail(state.catalog_error, pytrace=False)
    ex = _exercise_of(request.node)
    if ex is None:
        unknown = _unknown_exercise_message(request.node)
        pytest.fail(unknown or "this test has no @pytest.mark.exercise('N.M') marker", pytrace=False)
    return ex


@pytest.fixture
def impl(request: pytest.FixtureRequest, exercise: Exercise):
    """The module under test, from the implementation root chosen with --impl."""
    state = request.config.stash[STATE]
    from llmkit.sandbox import active

    sandbox = active()
    if sandbox is not None:
        try:
            return sandbox.module(exercise.id, state.root.source_files(exercise), exercise.banned)
        except (ImplementationError, CheckFailure) as exc:
            message = str(exc)
        pytest.fail(message, pytrace=False)  # outside the except: no chained traceback in the report
    loaded = state.root.loaded(exercise)
    if loaded is not None:
        return loaded
    try:
        if not exercise.banned:
            return state.root.load(exercise)
        # Trap banned names while the module imports too: a reference taken at import
        # time (f = F.softmax) is then the guard, and raises whenever learner code calls it.
        from llmkit.bans import trap_banned_calls

        with trap_banned_calls(exercise.banned, map(str, state.root.files_for(exercise)), exercise.id):
            return state.root.load(exercise)
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


# --- running -----------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if not torch.cuda.is_available():
        for item in items:
            if item.get_closest_marker("gpu"):
                item.add_marker(pytest.mark.skip(reason=NO_GPU))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Trap banned library calls from learner code while the test body runs."""
    ex = _exercise_of(item)
    state = item.config.stash[STATE]
    module = state.root.loaded(ex) if ex is not None and state.root is not None else None
    if module is None or not ex.banned:
        return (yield)
    from llmkit.bans import BannedCallError, trap_banned_calls

    files = module_files(module)
    with trap_banned_calls(ex.banned, files, ex.id) as trap:
        result = yield
    if trap.calls:  # the learner caught the error and carried on
        raise BannedCallError(f"exercise {ex.id} bans calls your code made: {', '.join(trap.calls)}")
    return result


def pytest_runtest_teardown(item: pytest.Item) -> None:
    from llmkit.sandbox import active

    sandbox = active()
    if sandbox is not None:
        sandbox.end_test()  # the worker forgets this test's inputs


def _raised_in_learner_code(excinfo: pytest.ExceptionInfo, files: tuple[str, ...]) -> bool:
    remote = getattr(excinfo.value, "llmkit_remote", None)
    if remote is not None:  # raised in a sandbox worker
        return bool(remote.get("in_learner_code"))
    return bool(excinfo.traceback) and str(excinfo.traceback[-1].path) in files


def _falsifying_example(exc: BaseException) -> str:
    """Hypothesis's notes on a failure (the inputs that failed), without the module
    under test's repr, which names files on the grading machine."""
    lines = "\n".join(getattr(exc, "__notes__", [])).splitlines()
    return "\n".join(line for line in lines if not line.strip().startswith("impl=<module"))


def _hidden_failure_message(excinfo: pytest.ExceptionInfo, files: tuple[str, ...]) -> str:
    exc = excinfo.value
    lines = [f"{type(exc).__name__}: {exc}".rstrip()]
    learner = [e for e in excinfo.traceback if str(e.path) in files]
    if learner:  # in-process: the learner's frames, innermost last
        lines.append("in your code:")
        lines += [
            f"  {Path(str(e.path)).name} line {e.lineno + 1}: {e.statement}".rstrip() for e in learner[-4:]
        ]
    notes = [n for n in getattr(exc, "__notes__", []) if n.startswith("in your code")]
    lines += notes  # sandboxed: the worker's traceback of the learner's code
    example = _falsifying_example(exc)
    return "\n".join([*lines, example] if example else lines)[-4000:]


def _not_started_message(excinfo: pytest.ExceptionInfo) -> str:
    remote = getattr(excinfo.value, "llmkit_remote", None)
    where = remote.get("where") if remote else None
    if isinstance(where, list) and len(where) == 3:
        return f"not started: {where[1]}() still raises NotImplementedError ({where[0]})"
    entry = excinfo.traceback[-1]
    name = getattr(entry.frame.code.raw, "co_qualname", entry.name)
    return f"not started: {name}() still raises NotImplementedError ({Path(str(entry.path)).name})"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    state = item.config.stash[STATE]
    ex = _exercise_of(item)
    status = None
    message = ""
    if call.excinfo is not None and ex is not None:
        module = state.root.loaded(ex) if state.root is not None else None
        files = module_files(module) if module is not None else ()
        if call.excinfo.errisinstance(NotImplementedError) and _raised_in_learner_code(call.excinfo, files):
            status, message = "not_started", _not_started_message(call.excinfo)
        elif call.excinfo.errisinstance(CheckFailure):
            exc = call.excinfo.value
            status, message = "failed", f"{exc}\n{_falsifying_example(exc)}".rstrip()
        elif (
            _is_grader(item, state)
            and call.when == "call"
            and not call.excinfo.errisinstance((pytest.fail.Exception, pytest.skip.Exception))
        ):
            # A hidden grader's source never reaches the learner: the error and where it
            # arose in the learner's code, nothing of the test's lines.
            status, message = "failed", _hidden_failure_message(call.excinfo, files)
        else:
            # Hide engine frames; keep the test's and the learner's.
            call.excinfo.traceback = call.excinfo.traceback.filter(
                lambda entry: not str(entry.path).startswith(ENGINE_DIR)
            )
    report: pytest.TestReport = yield
    if ex is None:
        return report
    if status is not None:
        report.longrepr = f"{item.nodeid}\n{message}" if status == "failed" else message
    _record(item, report, ex, state, status, message)
    return report


def _record(item, report, ex: Exercise, state: RunState, status, message) -> None:
    if report.when != "call" and report.passed:
        return  # setup and teardown matter only when they fail or skip
    points_marker = item.get_closest_marker("points")
    max_points = float(points_marker.args[0]) if points_marker else 0.0
    if status is None:
        if report.passed:
            status = "passed"
        elif report.skipped:
            status = "skipped"
        elif report.when == "setup":
            status = "error"
        else:
            status = "failed"
    if not message and not report.passed:
        if report.skipped and isinstance(report.longrepr, tuple):
            message = report.longrepr[2].removeprefix("Skipped: ")
        else:
            message = str(report.longrepr)[-4000:] if report.longrepr else ""
    previous = state.results.get(item.nodeid)
    if previous is not None and previous.status != "passed":
        return  # keep the first failure (a teardown error never overrides it)
    visibility = "hidden" if _is_grader(item, state) else "visible"
    state.results[item.nodeid] = TestResult(
        id=item.nodeid,
        exercise=ex.id,
        status=status,
        points=max_points if status == "passed" else 0.0,
        max_points=max_points,
        message=message,
        duration=round(report.duration, 4),
        visibility=visibility,
        metrics=dict(item.stash.get(METRICS, {})),
    )


def _is_grader(item: pytest.Item, state: RunState) -> bool:
    return state.catalog is not None and Path(str(item.path)).resolve().is_relative_to(
        state.catalog.root / "graders"
    )


# --- summary and report ------------------------------------------------------


@dataclass
class ExerciseSummary:
    exercise: Exercise
    passed: int = 0
    total: int = 0
    not_started: int = 0
    errors: int = 0
    skipped: int = 0
    points: float = 0.0
    max_points: float = 0.0  # of the tests that ran
    ungraded_points: float = 0.0  # of skipped tests (e.g. no GPU)
    graded: bool = False

    @property
    def status(self) -> str:
        ran = self.total - self.skipped
        if ran == 0:
            return NO_GPU if self.skipped else "no tests"
        if self.passed == ran:
            return "done"
        if self.not_started == ran:
            return "not started"
        if self.errors == ran:
            return "cannot load"
        return "in progress"


def summarize(results: list[TestResult], catalog: Catalog) -> list[ExerciseSummary]:
    by_id: dict[str, ExerciseSummary] = {}
    for r in results:
        s = by_id.setdefault(r.exercise, ExerciseSummary(catalog.get(r.exercise)))
        s.total += 1
        s.passed += r.status == "passed"
        s.not_started += r.status == "not_started"
        s.skipped += r.status == "skipped"
        s.errors += r.status == "error"
        if r.max_points:
            s.graded = True
            if r.status == "skipped":
                s.ungraded_points += r.max_points
            else:
                s.max_points += r.max_points
                s.points += r.points
    return sorted(by_id.values(), key=lambda s: s.exercise.sort_key)


def format_summary(summaries: list[ExerciseSummary]) -> list[str]:
    rows = [("exercise", "title", "status", "tests passed", "points")]
    for s in summaries:
        points = f"{s.points:g}/{s.max_points:g}" if s.graded else "-"
        if s.ungraded_points:
            points += f" ({s.ungraded_points:g} not graded)"
        rows.append((s.exercise.id, s.exercise.title, s.status, f"{s.passed}/{s.total - s.skipped}", points))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    state = config.stash[STATE]
    if not state.results or state.catalog is None:
        return
    terminalreporter.section("llmkit summary")
    terminalreporter.write_line(f"implementation: {state.root.label}   seed: {state.seed}")
    for line in format_summary(summarize(list(state.results.values()), state.catalog)):
        terminalreporter.write_line(line)
    for s in summarize(list(state.results.values()), state.catalog):
        if s.status == "not started":
            terminalreporter.write_line(
                f"{s.exercise.id}: open exercises/{s.exercise.module} and replace each "
                f"`raise NotImplementedError`; `llmkit hint {s.exercise.id}` gives a hint."
            )


def build_result(state: RunState, submission: str) -> SubmissionResult:
    """The canonical result of this run (see :mod:`llmkit.result`)."""
    tests = list(state.results.values())
    exercises = []
    for s in summarize(tests, state.catalog):
        ex = s.exercise
        skipped = sorted({t.message for t in tests if t.exercise == ex.id and t.status == "skipped"})
        if s.skipped == s.total:
            status, message = "not_graded", "; ".join(skipped)
        elif state.root is not None and not state.root.files_for(ex)[0].exists():
            status, message = "missing", f"the submission has no {ex.module}"
        else:
            status, message = "graded", ""
            if s.ungraded_points:
                message = f"{s.ungraded_points:g} points not graded: {'; '.join(skipped)}"
        exercises.append(ExerciseResult(ex.id, ex.title, s.points, s.max_points, status, message))
    return SubmissionResult(
        submission=submission,
        implementation=state.root.label if state.root else "",
        seed=state.seed,
        graded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        exercises=exercises,
        tests=tests,
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    state = session.config.stash[STATE]
    path = session.config.getoption("--llmkit-report")
    if not path or state.catalog is None:
        return
    submission = session.config.getoption("--submission-id") or (state.root.label if state.root else "")
    build_result(state, submission).write(Path(path))
