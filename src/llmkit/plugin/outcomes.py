"""What each test's outcome means for the learner: "not started" for a stub, check
failures without engine frames, hidden graders' failures without their source, and one
:class:`~llmkit.result.TestResult` per test in the run's state."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmkit
from llmkit.catalog import Exercise
from llmkit.failures import CheckFailure
from llmkit.impl import module_files
from llmkit.plugin.state import METRICS, STATE, RunState, exercise_of, is_grader
from llmkit.result import TestResult

ENGINE_DIR = str(Path(llmkit.__file__).resolve().parent)


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


def _stub_raised(excinfo: pytest.ExceptionInfo, files: tuple[str, ...]) -> pytest.ExceptionInfo | None:
    """The NotImplementedError a stub raised, else None. Hypothesis groups distinct failures
    (one per stub function an example reached) in an ExceptionGroup: a group of nothing but
    stubs' NotImplementedErrors is "not started" too, reported by its first."""
    group = getattr(excinfo.value, "exceptions", None)
    if isinstance(group, tuple):  # an ExceptionGroup (Python 3.11+, or hypothesis's backport)
        leaves = [pytest.ExceptionInfo.from_exception(e) for e in _leaves(excinfo.value)]
        return leaves[0] if leaves and all(_stub_raised(leaf, files) for leaf in leaves) else None
    if excinfo.errisinstance(NotImplementedError) and _raised_in_learner_code(excinfo, files):
        return excinfo
    return None


def _leaves(exc: BaseException) -> list[BaseException]:
    group = getattr(exc, "exceptions", None)
    return [leaf for e in group for leaf in _leaves(e)] if isinstance(group, tuple) else [exc]


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
    ex = exercise_of(item)
    status = None
    message = ""
    if call.excinfo is not None and ex is not None:
        root = state.root_of(item)
        module = root.loaded(ex) if root is not None else None
        files = module_files(module) if module is not None else ()
        stub = _stub_raised(call.excinfo, files)
        if stub is not None:
            status, message = "not_started", _not_started_message(stub)
        elif call.excinfo.errisinstance(CheckFailure):
            exc = call.excinfo.value
            status, message = "failed", f"{exc}\n{_falsifying_example(exc)}".rstrip()
        elif (
            is_grader(item, state)
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
    visibility = "hidden" if is_grader(item, state) else "visible"
    root = state.root_of(item)
    if max_points and status not in ("passed", "skipped") and root is not None and root.kind == "mutant":
        state.lost.add(root.label)
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
        implementation=root.label if root is not None else "",
    )
