"""Instructor reports, all rendered from :class:`llmkit.result.SubmissionResult`.

``write_reports(results, catalog, outdir)`` writes::

    outdir/gradebook.csv                                  one row per submission
    outdir/report.html                                    the class report
    outdir/submissions/<id>/feedback.html                 per-learner feedback
    outdir/submissions/<id>/gradescope_results.json       Gradescope autograder results.json
    outdir/submissions/<id>/exercism_results.json         exercism test-runner results.json (version 3)

(``llmkit grade`` keeps each ``result.json`` in the same ``submissions/<id>/``.) Learner-named
directories live only under ``submissions/``, so no submission name can collide with a class file.

Every file is written atomically (temporary file in the same directory, then ``os.replace``). A file
that cannot be written (a rendering error, a path that is in the way) is passed to ``on_error``
(default: a line on stderr naming the file and the reason) and the other files are still written.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from llmkit.reports.exercism import exercism_results
from llmkit.reports.gradebook import write_gradebook
from llmkit.reports.gradescope import gradescope_results
from llmkit.reports.html import write_class_report, write_feedback
from llmkit.result import write_json_atomically, write_text_atomically

SUBMISSIONS_DIR = "submissions"  # outdir/submissions/<id>/: every per-submission file

__all__ = [
    "SUBMISSIONS_DIR",
    "exercism_results",
    "gradescope_results",
    "safe_name",
    "write_class_report",
    "write_feedback",
    "write_gradebook",
    "write_reports",
    "write_text_atomically",
]


def safe_name(submission_id: str) -> str:
    """A file-name-safe form of a submission id: only ``[A-Za-z0-9._-]``, no ``..``, no leading dot."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", submission_id)
    name = re.sub(r"\.{2,}", lambda m: "_" * len(m.group()), name)
    if name.startswith("."):
        name = "_" + name[1:]
    return name or "_"


def print_write_error(path: Path, exc: BaseException) -> None:
    """The default ``on_error`` of :func:`write_reports`: one line on stderr."""
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    print(f"llmkit: could not write {path}: {reason}", file=sys.stderr)


def write_reports(
    results, catalog, outdir, *, on_error: Callable[[Path, BaseException], None] | None = None
) -> dict[str, Path]:
    """Write the gradebook, the class report and every submission's feedback and results files.

    Returns ``{submission id: its directory}`` (``outdir/submissions/<name>``); ids that sanitise to
    the same name get ``-2``, ``-3``... A file that cannot be written goes to ``on_error(path,
    exception)`` (default :func:`print_write_error`); the others are written all the same.
    """
    on_error = on_error or print_write_error
    outdir = Path(outdir)

    def attempt(path: Path, write: Callable[[], None]) -> None:
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - one file's failure never costs the others
            on_error(path, exc)

    results = sorted(results, key=lambda r: r.submission)
    gradebook, report = outdir / "gradebook.csv", outdir / "report.html"
    attempt(gradebook, lambda: write_gradebook(results, catalog, gradebook))
    attempt(report, lambda: write_class_report(results, catalog, report))
    dirs: dict[str, Path] = {}
    taken: set[str] = set()
    for result in results:
        base = name = safe_name(result.submission)
        n = 1
        while name.lower() in taken:  # case-insensitive file systems too
            n += 1
            name = f"{base}-{n}"
        taken.add(name.lower())
        sub = outdir / SUBMISSIONS_DIR / name
        feedback = sub / "feedback.html"
        attempt(feedback, lambda: write_feedback(result, catalog, feedback))
        for file, render in (
            ("gradescope_results.json", gradescope_results),
            ("exercism_results.json", exercism_results),
        ):
            path = sub / file
            attempt(path, lambda: write_json_atomically(path, render(result, catalog)))
        dirs[result.submission] = sub
    return dirs
