"""``llmkit watch``: re-run an exercise's public tests each time its module is saved.

Like rustlings' watch mode: the screen shows the exercise, its first failing test with the
engine's message (any "Likely mistake" diagnosis included), the hint command and a progress
bar over the learner's track. When the exercise passes its public tests, watch moves on to
the next one of the track that is not done, and exits when none is left.

Tracks: ``beginner`` is the catalog's beginner exercises, ``advanced`` is every exercise,
both in catalog order. Without ``--track`` it is beginner, or, when an exercise id is
given, the track that exercise belongs to.

Every run goes through :func:`llmkit.runner.run_pytest` and its results are kept as
``llmkit check`` keeps them, so ``llmkit status`` sees them too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.console import Console

from llmkit.catalog import Catalog, Exercise, load_catalog
from llmkit.impl import resolve_root
from llmkit.kept_results import keep_results, last_results
from llmkit.progress import NO_GPU, summarize
from llmkit.result import TestResult

FINISHED = ("done", NO_GPU)  # nothing left for the learner to do here
BAR_WIDTH = 20
console = Console()


def track_exercises(catalog: Catalog, track: str) -> list[Exercise]:
    """The exercises a learner of ``track`` follows, in catalog order."""
    chosen = [ex for ex in catalog.exercises if track == "advanced" or ex.track == "beginner"]
    return sorted(chosen, key=lambda ex: ex.sort_key)


def choose_track(catalog: Catalog, exercise_id: str | None, track: str | None) -> str:
    """``track`` if given (it must hold the exercise), else the exercise's own track, else beginner."""
    if exercise_id is None:
        return track or "beginner"
    ex = catalog.get(exercise_id)
    if track is None:
        return ex.track
    if ex not in track_exercises(catalog, track):
        raise ValueError(f"{ex.id} is on the {ex.track} track, not the {track} one; use --track {ex.track}")
    return track


def status_of(tests: list[TestResult] | None, catalog: Catalog) -> str:
    """The progress summary's status (done, in progress, not started, ...) of one exercise's tests."""
    if tests is None:
        return "not run yet"
    summary = next(iter(summarize(tests, catalog)), None)
    return summary.status if summary else "no tests"


def first_failure(tests: list[TestResult]) -> TestResult | None:
    return next((t for t in tests if t.status in ("failed", "error", "not_started")), None)


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = round(width * done / total) if total else width
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} exercises done"


class Watch:
    """One watch session: the catalog, the implementation root, the track's exercises."""

    def __init__(self, catalog: Catalog, impl: str | None, exercises: list[Exercise], track: str):
        self.catalog, self.impl, self.exercises, self.track = catalog, impl, exercises, track
        self.root = resolve_root(impl, catalog.root)

    # --- results -------------------------------------------------------------------------

    def run_tests(self, exercises: list[Exercise]) -> str | None:
        """Run the exercises' public tests in one pytest run and keep the results; return
        pytest's output if it could not run them (usage or collection error), else None."""
        from llmkit.runner import run_pytest

        started = time.time()
        run = run_pytest(
            self.catalog.root,
            [ex.public_test for ex in exercises],
            impl=self.impl,
            extra_args=["-p", "no:terminal"],
        )
        if run.crashed or run.result is None:
            return run.output
        keep_results(self.catalog, self.impl, exercises, run, started)
        return None

    def kept(self, ex: Exercise) -> list[TestResult] | None:
        """The exercise's last kept tests, or None when there are none."""
        return last_results(self.catalog, self.impl, ex)[0]

    def fresh(self, ex: Exercise) -> list[TestResult] | None:
        """The last kept tests if no source changed since they ran, else None."""
        tests, _, changed = last_results(self.catalog, self.impl, ex)
        return tests if changed is None else None

    def finished(self, ex: Exercise) -> bool:
        return status_of(self.kept(ex), self.catalog) in FINISHED

    def next_unfinished(self, after: Exercise | None = None) -> Exercise | None:
        """The first unfinished exercise after ``after`` in track order, wrapping around."""
        start = self.exercises.index(after) + 1 if after in self.exercises else 0
        for ex in self.exercises[start:] + self.exercises[:start]:
            if ex != after and not self.finished(ex):
                return ex
        return None

    # --- the screen ----------------------------------------------------------------------

    def show(self, lines: list[str], clear: bool = True) -> None:
        if clear:
            console.clear()
        for line in lines:
            console.print(line, markup=False, highlight=False, soft_wrap=True)

    def module_path(self, ex: Exercise) -> str:
        path = self.root.files_for(ex)[-1]
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def progress_line(self) -> str:
        done = sum(status_of(self.kept(ex), self.catalog) == "done" for ex in self.exercises)
        return progress_bar(done, len(self.exercises)) + f" ({self.track} track)"

    def screen(self, ex: Exercise, tests: list[TestResult] | None, note: str, crash: str) -> list[str]:
        lines = [note, ""] if note else []
        lines += [f"{ex.id} {ex.title}", self.module_path(ex), ""]
        if crash:
            lines += ["pytest could not run the tests:", *crash.rstrip().splitlines()[-20:]]
        else:
            lines.append(f"status: {status_of(tests, self.catalog)}")
            failure = first_failure(tests or [])
            if failure is not None:
                lines += ["", f"first failing test: {failure.name}", failure.message]
        lines += [
            "",
            f"Stuck? llmkit hint {ex.id}",
            self.progress_line(),
            "",
            f"Watching {self.module_path(ex)}: save it to run the tests again. Ctrl-C quits.",
        ]
        return lines

    # --- the loop ------------------------------------------------------------------------

    def watcher(self):
        """A watchfiles generator over the implementation's directories, already watching:
        saves made while the tests run are not lost. It yields an empty set when idle."""
        import watchfiles

        dirs = [self.root.path] + ([self.root.mutant.parent] if self.root.mutant else [])
        changes = watchfiles.watch(*dirs, yield_on_timeout=True, rust_timeout=250)
        next(changes)  # starts the watcher; returns after the first (empty) timeout
        return changes

    def wait_for_save(self, changes, ex: Exercise) -> None:
        mine = {os.path.realpath(f) for f in self.root.files_for(ex)}
        for batch in changes:
            if any(os.path.realpath(path) in mine for _, path in batch):
                return

    def run_one(self, ex: Exercise) -> tuple[list[TestResult] | None, str]:
        """Run the exercise's tests: its kept tests, or pytest's output if it could not run them."""
        self.show([f"Running the public tests of {ex.id}…"], clear=False)
        crash = self.run_tests([ex])
        return (None, crash) if crash else (self.kept(ex), "")

    def work_on(self, ex: Exercise, changes, note: str) -> None:
        """Show the exercise's screen and run its tests again on every save, until it passes.
        Fresh kept results (no source changed since) are shown without a run."""
        tests, crash = self.fresh(ex), ""
        if tests is None:
            tests, crash = self.run_one(ex)
        while crash or status_of(tests, self.catalog) not in FINISHED:
            self.show(self.screen(ex, tests, note, crash))
            note = ""
            self.wait_for_save(changes, ex)
            tests, crash = self.run_one(ex)

    def congratulate(self, ex: Exercise) -> tuple[Exercise | None, str]:
        """Show that ``ex`` passes; return the next unfinished exercise and the note that says so."""
        following = self.next_unfinished(after=ex)
        note = f"{ex.id} {ex.title} passes its public tests. Well done!"
        if following is not None:
            self.show([note, f"Next: {following.id} {following.title} ({self.module_path(following)})"])
        else:
            self.show([note])
        self.show(["", self.progress_line()], clear=False)
        return following, note

    def run(self, start: Exercise | None) -> int:
        changes = self.watcher()
        if start is None:
            count = len(self.exercises)
            self.show([f"Running the public tests of the {self.track} track ({count} exercises)…"])
            crash = self.run_tests(self.exercises)
            if crash:
                self.show(["pytest could not run the tests:", crash])
                return 2
            start = self.next_unfinished()
        current, note = start, ""
        while current is not None:
            self.work_on(current, changes, note)
            current, note = self.congratulate(current)
        done = f"All {len(self.exercises)} exercises of the {self.track} track pass their public tests."
        self.show(["", done, "The hidden graders check more: good luck!"], clear=False)
        return 0


def watch(exercise_id: str | None = None, track: str | None = None, impl: str | None = None) -> int:
    """``llmkit watch [ID] [--track T] [--impl DIR]``: exit code 0 when all is done or on Ctrl-C."""
    catalog = load_catalog()
    resolve_root(impl, catalog.root)  # an --impl that names nothing fails here, clearly
    track = choose_track(catalog, exercise_id, track)
    session = Watch(catalog, impl, track_exercises(catalog, track), track)
    try:
        return session.run(catalog.get(exercise_id) if exercise_id else None)
    except KeyboardInterrupt:
        console.print("\nStopped watching.", markup=False, highlight=False)
        return 0
