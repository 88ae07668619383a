"""The author check: proof that every exercise's tests can fail and can pass.

For each catalog exercise:

* the three trees mirror each other (stub, public test, reference, grader, mutants);
* the untouched stub fails every public test and scores 0 on the hidden graders;
* the reference passes every public test and scores the catalog's points;
* every grader test carries points, and they add up to the catalog's points;
* every mutant loses points on the hidden graders;
* sandboxed (``--sandbox``, as ``llmkit grade`` runs them) the graders give the
  reference the same points and the stub none, and mutants are graded that way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from llmkit.catalog import Catalog, Exercise
from llmkit.plugin import NO_GPU
from llmkit.runner import PytestRun, run_pytest


@dataclass
class ExerciseCheck:
    exercise: Exercise
    problems: list[str] = field(default_factory=list)
    mutants: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (points, max)

    @property
    def ok(self) -> bool:
        return not self.problems


def _points(run: PytestRun) -> tuple[float, float]:
    return sum(r.points for r in run.results), sum(r.max_points for r in run.results)


def _describe_crash(label: str, run: PytestRun) -> str:
    return f"{label}: pytest exited with {run.returncode}:\n{run.output[-2000:]}"


def mutant_files(catalog: Catalog, exercise: Exercise) -> list[Path]:
    return sorted(catalog.root.glob(exercise.mutants_glob))


def check_exercise(
    catalog: Catalog, exercise: Exercise, *, mutants: list[Path] | None = None, seed: int | None = None
) -> ExerciseCheck:
    root = catalog.root
    check = ExerciseCheck(exercise)
    required = [
        f"exercises/{exercise.module}",
        f"solutions/{exercise.module}",
        exercise.public_test,
        exercise.grader,
    ]
    missing = [p for p in required if not (root / p).is_file()]
    if missing:
        check.problems.append(f"missing files: {', '.join(missing)}")
        return check
    mutants = mutant_files(catalog, exercise) if mutants is None else mutants
    if not mutants:
        check.problems.append(f"no mutants matching {exercise.mutants_glob}")

    # In-process (how learners run tests) and sandboxed (how instructors grade: the
    # hidden graders only); mutants are graded the instructor's way.
    tests, graders, sandboxed = [exercise.public_test, exercise.grader], [exercise.grader], ["--sandbox"]
    runs = {
        "stubs": ("exercises", tests, []),
        "solutions": ("solutions", tests, []),
        "stubs (sandboxed)": ("exercises", graders, sandboxed),
        "solutions (sandboxed)": ("solutions", graders, sandboxed),
    }
    runs.update({f"mutant {m.name}": (str(m), graders, sandboxed) for m in mutants})
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            label: pool.submit(run_pytest, root, paths, impl=impl, seed=seed, extra_args=extra)
            for label, (impl, paths, extra) in runs.items()
        }
        done = {label: f.result() for label, f in futures.items()}

    stub, ref = done.pop("stubs"), done.pop("solutions")
    stub_sandboxed, ref_sandboxed = done.pop("stubs (sandboxed)"), done.pop("solutions (sandboxed)")
    for label, run in (
        ("stubs", stub),
        ("solutions", ref),
        ("stubs (sandboxed)", stub_sandboxed),
        ("solutions (sandboxed)", ref_sandboxed),
    ):
        if run.crashed or not run.results:
            check.problems.append(_describe_crash(label, run))
            return check

    public = [r for r in stub.results if r.visibility == "visible"]
    passing_stub = [r.id for r in public if r.status == "passed"]
    if passing_stub:
        check.problems.append(f"the stub passes public tests: {', '.join(passing_stub)}")
    if not public:
        check.problems.append(f"{exercise.public_test} ran no tests")
    stub_points, _ = _points(stub)
    if stub_points:
        earned = [r.id for r in stub.results if r.points]
        check.problems.append(f"the stub scores {stub_points:g} points: {', '.join(earned)}")

    # GPU-only tests cannot run on a machine without one; any other skip hides a test.
    gpu_only = sum(r.max_points for r in ref.results if r.status == "skipped" and r.message == NO_GPU)
    skipped_ref = [
        f"{r.id}: {r.message}" for r in ref.results if r.status == "skipped" and r.message != NO_GPU
    ]
    if skipped_ref:
        check.problems.append("the reference could not be fully graded here:\n  " + "\n  ".join(skipped_ref))
    failing_ref = [
        f"{r.id} ({r.status}): {r.message[:500]}"
        for r in ref.results
        if r.status not in ("passed", "skipped")
    ]
    if failing_ref:
        check.problems.append("the reference fails:\n  " + "\n  ".join(failing_ref))
    hidden = [r for r in ref.results if r.visibility == "hidden"]
    pointless = [r.id for r in hidden if not r.max_points]
    if pointless:
        check.problems.append(f"grader tests without @pytest.mark.points: {', '.join(pointless)}")
    ref_points, max_points = _points(ref)
    if max_points != exercise.points:
        check.problems.append(
            f"graders are worth {max_points:g} points but the catalog says {exercise.points}"
        )
    elif ref_points != max_points - gpu_only:
        check.problems.append(f"the reference scores {ref_points:g}/{max_points - gpu_only:g}")
    sandboxed_points = _points(ref_sandboxed)[0]
    if sandboxed_points != ref_points:
        failing = [f"{r.id}: {r.message[:300]}" for r in ref_sandboxed.results if r.status == "failed"]
        check.problems.append(
            f"sandboxed, the reference scores {sandboxed_points:g} (in-process {ref_points:g}):\n  "
            + "\n  ".join(failing)
        )
    if _points(stub_sandboxed)[0]:
        check.problems.append(f"sandboxed, the stub scores {_points(stub_sandboxed)[0]:g} points")

    for label, run in done.items():
        if run.crashed or not run.results:
            check.problems.append(_describe_crash(label, run))
            continue
        points, total = _points(run)
        check.mutants[label.removeprefix("mutant ")] = (points, total)
        if points >= ref_points:  # compared with what the reference scored in this run (GPU tests may skip)
            check.problems.append(
                f"{label} scores {points:g}/{total:g}, as much as the reference: no grader catches it"
            )
    return check


def check_catalog(
    catalog: Catalog, ids: list[str] | None = None, seed: int | None = None
) -> list[ExerciseCheck]:
    exercises = [catalog.get(i) for i in ids] if ids else list(catalog.exercises)
    return [check_exercise(catalog, ex, seed=seed) for ex in exercises]
