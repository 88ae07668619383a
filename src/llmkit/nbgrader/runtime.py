"""The notebook side of an llmkit nbgrader course (an IPython extension).

The set-up cell of every notebook runs ``%load_ext llmkit.nbgrader.runtime``, which
registers three cell magics:

``%%llmkit_module section2/attention.py``
    heads the answer cell. The cell's text is the learner's version of that module:
    it is recorded, written to a scratch file and run as a module whose names are
    then copied into the notebook, so later cells can call them.
``%%llmkit_support support/section2/attention.py``
    heads a read-only cell that holds a support module the public tests load
    (oracles, inputs; :mod:`llmkit.support`), by its path under ``exercises/``.
``%%llmkit_public_tests 2.3``
    heads the read-only cell that holds the exercise's public test file.

The test cells then call :func:`public_checks` (visible: runs the public tests on the
recorded module in a child pytest, as ``pytest exercises/...`` would) and, in the
hidden part that only the source notebook has, :func:`start_grading` and
:func:`grade`. :func:`grade` writes the recorded module to a temporary directory laid
out like ``exercises/`` and grades it with :func:`llmkit.grading.grade_submission`,
the same hidden graders as ``llmkit grade``, in the sandbox when :data:`SANDBOX` is
set. It prints a per-test report to stdout and returns the points as a float, which
nbgrader takes as partial credit (``nbgrader.utils.determine_grade``: the cell's
``execute_result`` is the score, any error or stderr output makes it 0).

Where the hidden graders live is read from the environment variable
:data:`KIT_ENV`, which the course's ``nbgrader_config.py`` sets: graders never
travel with the notebooks.

Learner code runs in the notebook's kernel, as in any nbgrader course: a learner
determined to cheat can tamper with that kernel. The points themselves come from a
child process that reads only the recorded source.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import types
import warnings
from pathlib import Path

SANDBOX = True  # the one setting: run learner code in llmkit's sandbox workers when grading
KIT_ENV = "LLMKIT_NBGRADER_KIT"  # the llmkit checkout whose catalog and graders grade the course
GRADING_TIMEOUT_S = 480.0  # outer guard for one exercise's hidden grading (nbgrader's cell timeout is longer)
PUBLIC_TIMEOUT_S = 300.0
MESSAGE_LINES = 12  # lines of each failure message shown in a report
MODULE = re.compile(r"^section\d+/[A-Za-z_][A-Za-z0-9_]*\.py$")
SUPPORT = re.compile(r"^support/section\d+/[A-Za-z_][A-Za-z0-9_]*\.py$")

_modules: dict[str, str] = {}  # module path -> text of the last run of its answer cell
_public_tests: dict[str, str] = {}  # exercise id -> text of its public test file
_supports: dict[str, str] = {}  # support module path under exercises/ -> its text
_loaded: dict[str, types.ModuleType] = {}  # module path -> the module its answer cell last ran
_exercises: dict[str, dict] = {}  # exercise id -> catalog fields, from the set-up cell
_results: dict[tuple[str, str], object] = {}  # (exercise id, source hash) -> SubmissionResult
_grading = False
_scratch: Path | None = None


class NotebookError(Exception):
    """A problem the learner can fix in the notebook; shown without a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython shows these lines instead of a traceback
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class PublicChecksFailed(NotebookError):
    """Some public checks fail."""


class GradingSetupError(Exception):
    """The course is not set up for grading (an instructor's problem, not the learner's)."""


# --- the IPython extension ---------------------------------------------------


def load_ipython_extension(ipython) -> None:
    if "triton" not in sys.modules and not os.environ.get("TRITON_INTERPRET"):
        import torch

        if not torch.cuda.is_available():  # Triton kernels then run in Triton's CPU interpreter
            os.environ["TRITON_INTERPRET"] = "1"

    def llmkit_module(line: str, cell: str) -> None:
        run_module(line.strip(), cell, ipython.user_ns)

    def llmkit_public_tests(line: str, cell: str) -> None:
        exercise_id = line.strip()
        if not exercise_id:
            raise NotebookError("%%llmkit_public_tests needs the exercise id, e.g. %%llmkit_public_tests 2.3")
        _public_tests[exercise_id] = cell
        print(f"Public tests of exercise {exercise_id} loaded; the test cell below runs them.")

    def llmkit_support(line: str, cell: str) -> None:
        path = line.strip()
        if not SUPPORT.match(path):
            raise NotebookError(
                f"%%llmkit_support needs a path like support/section2/attention.py, got {path!r}"
            )
        _supports[path] = cell

    ipython.register_magic_function(llmkit_module, magic_kind="cell")
    ipython.register_magic_function(llmkit_support, magic_kind="cell")
    ipython.register_magic_function(llmkit_public_tests, magic_kind="cell")


def exercise(
    id: str, *, module: str, title: str, difficulty: str, track: str, points: int, banned: list[str] = ()
) -> None:
    """Declare the notebook's exercise (the set-up cell calls this, from the catalog)."""
    _exercises[id] = dict(
        id=id,
        module=module,
        title=title,
        difficulty=difficulty,
        track=track,
        points=points,
        banned=list(banned),
    )


def _scratch_dir() -> Path:
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="llmkit-notebook-"))
        atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
    return _scratch


def run_module(module: str, source: str, namespace: dict) -> types.ModuleType:
    """Record ``source`` as the learner's ``module``, run it, and copy its names into ``namespace``."""
    if not MODULE.match(module):
        raise NotebookError(f"%%llmkit_module needs a module path like section2/attention.py, got {module!r}")
    _modules[module] = source
    path = _scratch_dir() / module  # a real file: tracebacks show lines, inspect and Triton read source
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    name = "llmkit_notebook." + module[: -len(".py")].replace("/", ".")
    mod = types.ModuleType(name)
    mod.__file__ = str(path)
    sys.modules[name] = mod
    exec(compile(source, str(path), "exec"), mod.__dict__)
    _loaded[module] = mod
    namespace.update({k: v for k, v in mod.__dict__.items() if not (k.startswith("__") and k.endswith("__"))})
    return mod


# --- output discipline: stdout only ------------------------------------------


@contextlib.contextmanager
def _stdout_only():
    """Send everything written to stderr (Python or C level) to stdout, and silence
    warnings: nbgrader scores a test cell 0 as soon as it writes to stderr."""
    saved = None
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(1, 2)
    except (OSError, ValueError, AttributeError):
        saved = None
    try:
        with contextlib.redirect_stderr(sys.stdout), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if saved is not None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stdout.flush()
            os.dup2(saved, 2)
            os.close(saved)


# --- public checks (visible) -------------------------------------------------


def _toml_catalog(info: dict) -> str:
    section = int(info["module"].split("/")[0][len("section") :])
    fields = "\n".join(
        f"{key} = {json.dumps(info[key])}" for key in ("id", "module", "title", "difficulty", "track")
    )
    return (
        f'[[section]]\nnumber = {section}\ntitle = "Section {section}"\n\n'
        f"[[exercise]]\n{fields}\npoints = {int(info['points'])}\nbanned = {json.dumps(info['banned'])}\n"
    )


def show(exercise_id: str) -> None:
    """Draw the exercise's figure with the learner's module (``llmkit show`` in a notebook)."""
    from IPython.display import Image, display

    from llmkit.catalog import load_catalog
    from llmkit.show import draw_module
    from llmkit.support import load_support

    if _grading:
        print("Pictures are not drawn while grading.")
        return
    info = _exercises.get(exercise_id)
    if info is None:
        raise NotebookError("run the set-up cell at the top of the notebook first")
    _require_module(info["module"])
    if f"support/{info['module']}" not in _supports:
        raise NotebookError("run the cells with the public tests' helpers (%%llmkit_support) first")
    root = _scratch_dir() / "show"
    for path, text in _supports.items():
        support = root / "exercises" / path
        support.parent.mkdir(parents=True, exist_ok=True)
        support.write_text(text, encoding="utf-8")
    (root / "catalog.toml").write_text(_toml_catalog(info), encoding="utf-8")
    exercise = load_catalog(root).get(exercise_id)
    shown = draw_module(load_support(exercise, root), _loaded[info["module"]], exercise, root / "figures")
    if shown.status == "drawn":
        display(Image(data=shown.path.read_bytes()))
    print(shown.message)


def _require_module(module: str) -> str:
    source = _modules.get(module)
    if source is None:
        raise NotebookError(
            f"run the answer cell first (the cell that starts with %%llmkit_module {module}); "
            "keep that first line, it tells llmkit which module the cell is"
        )
    return source


def start_grading() -> None:
    """Hidden: the notebook is being graded; public checks give way to the graders."""
    global _grading
    _grading = True


def public_checks(exercise_id: str) -> None:
    """Run the exercise's public tests on the answer cell's code; raise if any fails."""
    if _grading:
        print("Public checks are not run while grading: the hidden graders below check more.")
        return None
    from llmkit.runner import run_pytest

    info = _exercises.get(exercise_id)
    if info is None:
        raise NotebookError("run the set-up cell at the top of the notebook first")
    tests = _public_tests.get(exercise_id)
    if tests is None:
        raise NotebookError("run the cell with the public tests (%%llmkit_public_tests) first")
    if f"support/{info['module']}" not in _supports:
        raise NotebookError("run the cells with the public tests' helpers (%%llmkit_support) first")
    source = _require_module(info["module"])
    section, topic = info["module"][: -len(".py")].split("/")
    with tempfile.TemporaryDirectory(prefix="llmkit-public-") as tmp:
        root = Path(tmp)
        (root / "catalog.toml").write_text(_toml_catalog(info), encoding="utf-8")
        test_file = root / "exercises" / section / f"test_{topic}.py"
        test_file.parent.mkdir(parents=True)
        test_file.write_text(tests, encoding="utf-8")
        for path, text in _supports.items():  # the modules the public tests load, beside them
            support = root / "exercises" / path
            support.parent.mkdir(parents=True, exist_ok=True)
            support.write_text(text, encoding="utf-8")
        impl = root / "impl" / info["module"]
        impl.parent.mkdir(parents=True)
        impl.write_text(source, encoding="utf-8")
        print(f"Running the public checks of exercise {exercise_id}...", flush=True)
        run = run_pytest(
            root,
            [str(test_file.relative_to(root))],
            impl=str(root / "impl"),
            extra_args=["-p", "no:terminal"],
            timeout_s=PUBLIC_TIMEOUT_S,
        )
    if run.result is None:
        why = "timed out" if run.timed_out else f"stopped (exit code {run.returncode})"
        tail = "\n".join(run.output.strip().splitlines()[-MESSAGE_LINES:])
        raise PublicChecksFailed(f"the public checks {why}:\n{tail}")
    tests_run = run.result.tests
    for line in report_lines(tests_run, show_points=False):
        print(line)
    failing = [t for t in tests_run if t.status not in ("passed", "skipped")]
    if not tests_run:
        raise PublicChecksFailed("no public checks ran")
    if failing:
        raise PublicChecksFailed(f"{len(failing)} of {len(tests_run)} public checks do not pass yet")
    print(f"All {len(tests_run)} public checks pass. The hidden graders check more when you submit.")
    return None


# --- hidden grading ----------------------------------------------------------


def _kit_root() -> Path:
    value = os.environ.get(KIT_ENV)
    if not value:
        raise GradingSetupError(
            f"{KIT_ENV} is not set: run nbgrader from the course directory written by "
            "`llmkit nbgrader build`, whose nbgrader_config.py points it at the llmkit checkout"
        )
    root = Path(value)
    if not (root / "catalog.toml").is_file() or not (root / "graders").is_dir():
        raise GradingSetupError(f"{KIT_ENV}={value} is not an llmkit checkout (no catalog.toml and graders/)")
    return root


def grade(exercise_id: str, points: float, tests: list[str] | None = None, exclude: list[str] = ()) -> float:
    """Hidden test: grade the answer cell with the kit's hidden graders.

    Prints a report to stdout and returns the points earned by the selected grader
    tests (``tests``: only these function names; ``exclude``: all but these), at most
    ``points``, the cell's points. Never writes to stderr.
    """
    with _stdout_only():
        from llmkit.catalog import load_catalog

        root = _kit_root()
        catalog = load_catalog(root)
        ex = catalog.get(exercise_id)
        source = _modules.get(ex.module)
        print(f"Exercise {ex.id}: {ex.title}")
        if source is None:
            print(
                f"0 points: the answer cell for {ex.module} did not run "
                f"(its first line must stay %%llmkit_module {ex.module})"
            )
            return 0.0
        result = _graded(ex, catalog, source)
        selected = [
            t
            for t in result.tests
            if (tests is None or t.name in tests) and t.name not in exclude and t.exercise == ex.id
        ]
        earned = sum(t.points for t in selected)
        possible = sum(t.max_points for t in selected)
        if result.error:
            note = result.error.strip().splitlines()
            print(
                "Note: "
                + "\n      ".join(note[:MESSAGE_LINES] + (["..."] if len(note) > MESSAGE_LINES else []))
            )
        mode = "sandboxed" if SANDBOX else "in-process"
        print(f"Hidden graders: {earned:g}/{points:g} points (seed {result.seed}, {mode})")
        skipped = [t for t in selected if t.status == "skipped"]
        if selected and len(skipped) == len(selected):
            reasons = sorted({t.message for t in skipped})
            print(f"Not graded on this machine ({'; '.join(reasons)}): these points stay 0 here.")
        for line in report_lines(selected, show_points=True):
            print(line)
        if not selected:
            print("No grader test ran: see the note above.")
        if possible != points and not skipped:
            print(
                f"Note: these graders are worth {possible:g} points, the cell {points:g}; rebuild the course."
            )
        return float(min(max(earned, 0.0), float(points)))


def _graded(ex, catalog, source: str):
    """The grading result for this source (cached: two test cells of one exercise share it)."""
    from llmkit.grading import grade_submission

    key = (ex.id, hashlib.sha256(source.encode("utf-8")).hexdigest())
    if key not in _results:
        with tempfile.TemporaryDirectory(prefix="llmkit-nbgrade-") as tmp:
            target = Path(tmp) / "notebook" / ex.module
            target.parent.mkdir(parents=True)
            target.write_text(source, encoding="utf-8")
            _results[key] = grade_submission(
                target.parent.parent, catalog, exercises=[ex], sandbox=SANDBOX, timeout_s=GRADING_TIMEOUT_S
            )
    return _results[key]


SYMBOLS = {"passed": "✔", "failed": "✘", "error": "✘", "not_started": "·", "skipped": "–"}


def report_lines(tests, show_points: bool) -> list[str]:
    """One line per test, with the first lines of each failure message (a message
    equal to the one just shown is not repeated)."""
    lines, previous = [], None
    for t in tests:
        name = t.id.rsplit("::", 1)[-1]
        score = f"{t.points:g}/{t.max_points:g}  " if show_points else ""
        lines.append(f"  {SYMBOLS.get(t.status, '?')} {score}{name}")
        if t.status != "passed" and t.message:
            message = t.message.strip().splitlines()
            if message == previous:
                lines.append("      (the same as above)")
                continue
            previous = message
            shown = message[:MESSAGE_LINES] + (["..."] if len(message) > MESSAGE_LINES else [])
            lines.extend("      " + m for m in shown)
    return lines
