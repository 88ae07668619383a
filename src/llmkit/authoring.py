"""The author check: proof that every exercise's tests can fail and can pass.

For each catalog exercise:

* the structural rules hold (:func:`structure_problems`): the three trees mirror
  each other, there are enough mutants, the section README carries the generated
  header; the numbers come from ``[tool.llmkit.authoring]`` in ``pyproject.toml``;
* the untouched stub fails every public test and scores 0 on the hidden graders;
* the reference passes every public test and scores the catalog's points;
* every grader test carries points, and they add up to the catalog's points;
* sandboxed (``--sandbox``, as ``llmkit grade`` runs them) the graders give the
  reference the same points and the stub none, and every mutant loses points;
* every mutant is one of the support module's ``MISCONCEPTIONS``: a correctness mutant
  fails a public test that names it (``Likely mistake [<slug>]``), a speed or memory
  mutant loses its points saying "too slow" or "too much memory".

Three pytest processes per exercise do all of it, each running its tests over several
implementation roots (``--impl`` given once per root): one in-process (public tests
and graders, stub and reference, as learners run them), one sandboxed (graders only,
stub, reference and every mutant, sharing one fork server; a mutant stops at its
first lost point), one in-process with the public tests on the correctness mutants.
:func:`check_catalog` spreads the processes over the cores.
"""

from __future__ import annotations

import ast
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from llmkit.catalog import Catalog, Exercise, tomllib
from llmkit.progress import NO_GPU
from llmkit.result import TestResult
from llmkit.runner import PytestRun, run_pytest

STUB, REFERENCE = "exercises/", "solutions/"  # the roots' labels in results


@dataclass(frozen=True)
class AuthoringRules:
    """The numbers the author check holds exercises to: ``[tool.llmkit.authoring]``."""

    min_mutants: int = 5

    @classmethod
    def load(cls, project_root: Path) -> AuthoringRules:
        path = project_root / "pyproject.toml"
        table = {}
        if path.is_file():
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("llmkit", {})
            table = table.get("authoring", {})
        unknown = set(table) - set(cls.__dataclass_fields__)
        if unknown:
            keys = ", ".join(sorted(unknown))
            raise ValueError(f"pyproject.toml [tool.llmkit.authoring]: unknown keys {keys}")
        return cls(**table)


@dataclass
class ExerciseCheck:
    exercise: Exercise
    problems: list[str] = field(default_factory=list)
    mutants: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (points, max)

    @property
    def ok(self) -> bool:
        return not self.problems


def mutant_files(catalog: Catalog, exercise: Exercise) -> list[Path]:
    return sorted(catalog.root.glob(exercise.mutants_glob))


def mirror_files(exercise: Exercise) -> dict[str, str]:
    """The files every exercise has, one per tree: path -> what it is."""
    return {
        f"exercises/{exercise.module}": "the stub learners edit",
        exercise.public_test: "the public tests",
        f"solutions/{exercise.module}": "the reference solution",
        exercise.grader: "the hidden graders",
        exercise.support: "the support module: oracles, inputs, MISCONCEPTIONS, figure(impl)",
    }


def _imports_sandbox(source: str) -> bool:
    """Whether ``source`` imports ``llmkit.sandbox`` or a module in it (an import or from line)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False  # the test run reports it
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        if any(name == "llmkit.sandbox" or name.startswith("llmkit.sandbox.") for name in names):
            return True
    return False


def structure_problems(
    catalog: Catalog, exercise: Exercise, rules: AuthoringRules, mutants: list[Path]
) -> list[str]:
    """The rules that need no test run, each as one line naming the file to change."""
    root, problems = catalog.root, []
    for path, what in mirror_files(exercise).items():
        if not (root / path).is_file():
            problems.append(f"{path}: missing ({what} of {exercise.id})")
    if len(mutants) < rules.min_mutants:
        problems.append(
            f"graders/mutants/{exercise.section_dir}/: {len(mutants)} mutants named "
            f"{exercise.topic}__<bug>.py, at least {rules.min_mutants} wanted "
            "(pyproject.toml [tool.llmkit.authoring] min_mutants)"
        )
    support = root / exercise.support
    if support.is_file() and not _defines(support, "figure"):
        problems.append(
            f"{exercise.support}: define figure(impl) (the notebook's and `llmkit show`'s picture)"
        )
    if support.is_file():
        problems += _misconception_problems(catalog, exercise, mutants)
    readme = root / "exercises" / exercise.section_dir / "README.md"
    if not readme.is_file():
        problems.append(f"{readme.relative_to(root)}: missing (the section's README)")
    elif "<!-- llmkit:exercises:start -->" not in readme.read_text(encoding="utf-8"):
        problems.append(
            f"{readme.relative_to(root)}: no <!-- llmkit:exercises:start --> / end markers "
            "(the generated exercise headers go there; then run `llmkit docs --write`)"
        )
    else:
        problems += _heading_problems(readme, root, {ex.id for ex in catalog.in_section(exercise.section)})
    for path in (exercise.public_test, exercise.grader):
        if (root / path).is_file() and _imports_sandbox((root / path).read_text(encoding="utf-8")):
            problems.append(f"{path}: imports llmkit.sandbox; use llmkit.testing")
    return problems


def misconceptions_of(catalog: Catalog, exercise: Exercise):
    """The exercise's ``MISCONCEPTIONS`` (its support module's), or a string saying what is wrong."""
    from llmkit.misconceptions import Misconceptions
    from llmkit.support import load_support

    try:
        declared = getattr(load_support(exercise, catalog.root), "MISCONCEPTIONS", None)
    except Exception as exc:  # noqa: BLE001 - reported as a problem of the exercise
        return f"{exercise.support}: does not import: {type(exc).__name__}: {exc}"
    if not isinstance(declared, Misconceptions):
        return f"{exercise.support}: define MISCONCEPTIONS = Misconceptions(...) (llmkit.testing)"
    return declared


def _misconception_problems(catalog: Catalog, exercise: Exercise, mutants: list[Path]) -> list[str]:
    """Every mutant is a declared misconception, and each points at a heading its README has."""
    declared = misconceptions_of(catalog, exercise)
    if isinstance(declared, str):
        return [declared]
    problems = []
    slugs = {m.slug for m in declared}
    for mutant in mutants:
        slug = mutant.stem.split("__", 1)[-1]
        if slug not in slugs:
            problems.append(f"mutant {mutant.name}: no misconception {slug!r} in {exercise.support}")
    readme = catalog.root / declared.readme
    headings = set()
    if readme.is_file():
        text = readme.read_text(encoding="utf-8")
        headings = {line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")}
    for m in declared:
        if m.readme not in headings:
            problems.append(f'misconception {m.slug}: {declared.readme} has no heading "{m.readme}"')
    return problems


def _heading_problems(readme: Path, root: Path, ids: set[str]) -> list[str]:
    """``## <id> — <title>`` headings send a README section to that exercise's notebook:
    each must name an exercise of the section, in that form."""
    from llmkit.nbgrader.narrative import GENERATED, OWN_HEADING

    where, problems, in_code = readme.relative_to(root), [], False
    for line in GENERATED.sub("", readme.read_text(encoding="utf-8")).split("\n"):
        in_code ^= line.lstrip().startswith("```")
        if in_code or not re.match(r"^##\s+\d+\.\d+", line):
            continue
        match = OWN_HEADING.match(line)
        if match is None:
            problems.append(f"{where}: heading {line!r}: write it as '## <id> — <title>'")
        elif match["id"] not in ids:
            problems.append(f"{where}: heading {line!r} names no exercise of this section")
    return problems


def _defines(path: Path, name: str) -> bool:
    """Whether the module at ``path`` defines a top-level function ``name`` (read, not run)."""
    import ast

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except SyntaxError:
        return False
    return any(isinstance(node, ast.FunctionDef) and node.name == name for node in tree.body)


@dataclass
class _Plan:
    exercise: Exercise
    mutants: list[Path]
    check: ExerciseCheck
    runs: dict[str, PytestRun] = field(default_factory=dict)
    misconceptions: object = None  # Misconceptions, or what is wrong with them (str)


def _runs_of(plan: _Plan) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """label -> (test paths, implementation roots, extra pytest options)."""
    ex = plan.exercise
    runs = {
        "sandboxed": (
            [ex.grader],
            ["exercises", "solutions", *map(str, plan.mutants)],
            ["--sandbox", "--stop-at-first-loss"],
        ),
        "in-process": ([ex.public_test, ex.grader], ["exercises", "solutions"], []),
    }
    correctness = [str(m) for m in plan.mutants if _kind(plan, m) == "correctness"]
    if correctness:  # the public tests must catch these, naming them
        runs["public on mutants"] = ([ex.public_test], correctness, [])
    return runs


def _kind(plan: _Plan, mutant: Path) -> str | None:
    """The kind of the misconception ``mutant`` carries; None when it declares none."""
    slug, declared = mutant.stem.split("__", 1)[-1], plan.misconceptions
    if isinstance(declared, str) or declared is None or slug not in {m.slug for m in declared}:
        return None
    return declared[slug].kind


def check_catalog(
    catalog: Catalog,
    ids: list[str] | None = None,
    seed: int | None = None,
    *,
    mutants: dict[str, list[Path]] | None = None,
    jobs: int | None = None,
) -> list[ExerciseCheck]:
    """Check the exercises (all, or ``ids``), ``jobs`` pytest processes at a time
    (default: one per core). ``mutants`` replaces an exercise's mutant files by id."""
    rules = AuthoringRules.load(catalog.root)
    exercises = [catalog.get(i) for i in ids] if ids else list(catalog.exercises)
    plans = []
    for ex in exercises:
        files = (mutants or {}).get(ex.id)
        files = mutant_files(catalog, ex) if files is None else files
        plan = _Plan(ex, files, ExerciseCheck(ex, structure_problems(catalog, ex, rules, files)))
        if (catalog.root / ex.support).is_file():
            plan.misconceptions = misconceptions_of(catalog, ex)
        plans.append(plan)
    runnable = [p for p in plans if all((catalog.root / f).is_file() for f in mirror_files(p.exercise))]
    work = [(plan, label, spec) for plan in runnable for label, spec in _runs_of(plan).items()]
    work.sort(key=lambda w: -len(w[2][1]))  # the longest runs (most roots) first
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        futures = [
            (plan, label, pool.submit(run_pytest, catalog.root, tests, impl=roots, seed=seed, extra_args=x))
            for plan, label, (tests, roots, x) in work
        ]
        for plan, label, future in futures:
            plan.runs[label] = future.result()
    for plan in runnable:
        _judge(plan)
    return [plan.check for plan in plans]


def _diagnosis_problems(
    plan: _Plan, mutant: Path, public: list[TestResult], graded: list[TestResult]
) -> list[str]:
    """A correctness mutant fails a public test that names it; a speed or memory mutant's
    lost grader points say "too slow" or "too much memory"."""
    from llmkit.misconceptions import KIND_WORDS, diagnosed_slugs

    slug, kind = mutant.stem.split("__", 1)[-1], _kind(plan, mutant)
    if kind is None:
        return []  # a structure problem already says so
    if kind != "correctness":
        lost = [r for r in graded if r.status == "failed"]
        if any(KIND_WORDS[kind] in r.message for r in lost):
            return []
        said = "; ".join(f"{r.id}: {r.message[:200]}" for r in lost) or "nothing"
        return [
            f"mutant {mutant.name} ({kind}): no lost grader point says {KIND_WORDS[kind]!r}; they say: {said}"
        ]
    failed = [r for r in public if r.status == "failed"]
    if not failed:
        return [
            f"mutant {mutant.name} passes every public test ({plan.exercise.public_test}): "
            "a learner with this bug is told 'done'"
        ]
    if any(slug in diagnosed_slugs(r.message) for r in failed):
        return []
    said = "; ".join(f"{r.id}: {r.message.splitlines()[0][:160]}" for r in failed)
    return [
        f"mutant {mutant.name}: no failing public test names it (Likely mistake [{slug}]: give "
        f"the check suspects=MISCONCEPTIONS.on(...), or raise MISCONCEPTIONS.failure({slug!r}, ...)); "
        f"they say: {said}"
    ]


def check_exercise(
    catalog: Catalog, exercise: Exercise, *, mutants: list[Path] | None = None, seed: int | None = None
) -> ExerciseCheck:
    overrides = None if mutants is None else {exercise.id: mutants}
    return check_catalog(catalog, [exercise.id], seed, mutants=overrides)[0]


def _points(results: list[TestResult]) -> tuple[float, float]:
    return sum(r.points for r in results), sum(r.max_points for r in results)


def _judge(plan: _Plan) -> None:
    check, ex = plan.check, plan.exercise
    problems = check.problems
    crashed = [(label, run) for label, run in plan.runs.items() if run.crashed or not run.results]
    for label, run in crashed:
        problems.append(f"{label} run: pytest exited with {run.returncode}:\n{run.output[-2000:]}")
    if crashed:
        return

    def of(label: str, root: str) -> list[TestResult]:
        run = plan.runs.get(label)
        return [r for r in run.results if r.implementation == root] if run else []

    stub, ref = of("in-process", STUB), of("in-process", REFERENCE)
    stub_sandboxed, ref_sandboxed = of("sandboxed", STUB), of("sandboxed", REFERENCE)

    public = [r for r in stub if r.visibility == "visible"]
    passing_stub = [r.id for r in public if r.status == "passed"]
    if passing_stub:
        problems.append(f"the stub passes public tests: {', '.join(passing_stub)}")
    if not public:
        problems.append(f"{ex.public_test} ran no tests")
    stub_points, _ = _points(stub)
    if stub_points:
        earned = [r.id for r in stub if r.points]
        problems.append(f"the stub scores {stub_points:g} points: {', '.join(earned)}")

    # GPU-only tests cannot run on a machine without one; any other skip hides a test.
    gpu_only = sum(r.max_points for r in ref if r.status == "skipped" and r.message == NO_GPU)
    skipped_ref = [f"{r.id}: {r.message}" for r in ref if r.status == "skipped" and r.message != NO_GPU]
    if skipped_ref:
        problems.append("the reference could not be fully graded here:\n  " + "\n  ".join(skipped_ref))
    failing = [r for r in ref if r.status not in ("passed", "skipped")]
    failing_ref = [f"{r.id} ({r.status}): {r.message[:500]}" for r in failing]
    if failing_ref:
        problems.append("the reference fails:\n  " + "\n  ".join(failing_ref))
    hidden = [r for r in ref if r.visibility == "hidden"]
    pointless = [r.id for r in hidden if not r.max_points]
    if pointless:
        problems.append(f"{ex.grader}: tests without @pytest.mark.points: {', '.join(pointless)}")
    ref_points, max_points = _points(ref)
    if max_points != ex.points:
        problems.append(
            f"catalog.toml: {ex.id} is worth {ex.points} points but its graders add up to {max_points:g}"
        )
    elif ref_points != max_points - gpu_only:
        problems.append(f"the reference scores {ref_points:g}/{max_points - gpu_only:g}")
    sandboxed_points = _points(ref_sandboxed)[0]
    if sandboxed_points != ref_points:
        failing = [f"{r.id}: {r.message[:300]}" for r in ref_sandboxed if r.status == "failed"]
        problems.append(
            f"sandboxed, the reference scores {sandboxed_points:g} (in-process {ref_points:g}):\n  "
            + "\n  ".join(failing)
        )
    if _points(stub_sandboxed)[0]:
        problems.append(f"sandboxed, the stub scores {_points(stub_sandboxed)[0]:g} points")

    for mutant in plan.mutants:
        results = of("sandboxed", f"mutant {mutant.name}")
        if not results:
            tail = plan.runs["sandboxed"].output[-1500:]
            problems.append(f"mutant {mutant.name}: no results; the run's output ends:\n{tail}")
            continue
        points, total = _points(results)
        check.mutants[mutant.name] = (points, total)
        problems += _diagnosis_problems(
            plan, mutant, of("public on mutants", f"mutant {mutant.name}"), results
        )
        if points >= sandboxed_points:  # compared with the reference in this run (GPU tests may skip)
            problems.append(
                f"mutant {mutant.name} scores {points:g}/{total:g}, as much as the reference: "
                "no grader catches it"
            )
