"""Instructor reports, all rendered from :class:`llmkit.result.SubmissionResult`.

``write_reports(results, catalog, outdir)`` writes::

    outdir/gradebook.csv                      one row per submission
    outdir/report.html                        the class report
    outdir/<id>/feedback.html                 per-learner feedback
    outdir/<id>/gradescope_results.json       Gradescope autograder results.json
    outdir/<id>/exercism_results.json         exercism test-runner results.json (version 3)

Every file is written atomically (temporary file in the same directory, then ``os.replace``).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from llmkit.reports.exercism import exercism_results
from llmkit.reports.gradebook import write_gradebook
from llmkit.reports.gradescope import gradescope_results
from llmkit.reports.html import write_class_report, write_feedback
from llmkit.result import write_json_atomically

__all__ = [
    "exercism_results",
    "gradescope_results",
    "safe_name",
    "write_class_report",
    "write_feedback",
    "write_gradebook",
    "write_reports",
    "write_text_atomically",
]


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, line endings untouched) to a temporary file beside ``path``, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def safe_name(submission_id: str) -> str:
    """A file-name-safe form of a submission id: only ``[A-Za-z0-9._-]``, no ``..``, no leading dot."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", submission_id)
    name = re.sub(r"\.{2,}", lambda m: "_" * len(m.group()), name)
    if name.startswith("."):
        name = "_" + name[1:]
    return name or "_"


def write_reports(results, catalog, outdir) -> dict[str, Path]:
    """Write the gradebook, the class report and every submission's feedback and results files.

    Returns ``{submission id: its directory}``; ids that sanitise to the same name get ``-2``, ``-3``...
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    results = sorted(results, key=lambda r: r.submission)
    write_gradebook(results, catalog, outdir / "gradebook.csv")
    write_class_report(results, catalog, outdir / "report.html")
    dirs: dict[str, Path] = {}
    taken: set[str] = {"gradebook.csv", "report.html"}
    for result in results:
        base = name = safe_name(result.submission)
        n = 1
        while name.lower() in taken:  # case-insensitive file systems too
            n += 1
            name = f"{base}-{n}"
        taken.add(name.lower())
        sub = outdir / name
        write_feedback(result, catalog, sub / "feedback.html")
        write_json_atomically(sub / "gradescope_results.json", gradescope_results(result, catalog))
        write_json_atomically(sub / "exercism_results.json", exercism_results(result, catalog))
        dirs[result.submission] = sub
    return dirs
