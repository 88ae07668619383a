"""CSV gradebook: one row per submission, one column per catalog exercise."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from llmkit.result import SubmissionResult


def fmt_points(x: float) -> str:
    """``12.0`` -> ``12``, ``2.5`` -> ``2.5``, at most three decimals."""
    x = float(x)
    if x.is_integer():
        return str(int(x))
    return f"{x:.3f}".rstrip("0").rstrip(".")


def exercise_column(exercise) -> str:
    """The gradebook column for an exercise: ``2.3 Scaled dot-product and multi-head attention``."""
    return f"{exercise.id} {exercise.title}"


def max_score(result: SubmissionResult, catalog) -> float:
    """The result's maximum; the catalog's total when nothing was graded (a submission-level error)."""
    if result.exercises:
        return result.max_points
    return float(sum(ex.points for ex in catalog.exercises))


def row_status(result: SubmissionResult, catalog) -> str:
    """``ok``, ``error``, or what is off: ``2.1 missing; 7.1 not_graded; 5.1 not_run``."""
    if result.error:
        return "error"
    by_id = {e.id: e for e in result.exercises}
    parts = []
    for ex in catalog.exercises:
        er = by_id.get(ex.id)
        if er is None:
            parts.append(f"{ex.id} not_run")
        elif er.status != "graded":
            parts.append(f"{ex.id} {er.status}")
    return "; ".join(parts) or "ok"


def gradebook_rows(results: list[SubmissionResult], catalog) -> tuple[list[str], list[list[str]]]:
    """Header and rows (sorted by submission id); a missing exercise scores 0, ``status`` says why."""
    header = ["student_id", *(exercise_column(ex) for ex in catalog.exercises)]
    header += ["total_score", "max_score", "status", "seed", "error"]
    rows = []
    for result in sorted(results, key=lambda r: r.submission):
        points = {e.id: e.points for e in result.exercises}
        row = [result.submission, *(fmt_points(points.get(ex.id, 0.0)) for ex in catalog.exercises)]
        row += [
            fmt_points(result.points),
            fmt_points(max_score(result, catalog)),
            row_status(result, catalog),
            str(result.seed),
            result.error or "",
        ]
        rows.append(row)
    return header, rows


def write_gradebook(results: list[SubmissionResult], catalog, path) -> None:
    """Write the CSV gradebook (UTF-8) atomically to ``path``."""
    from llmkit.result import write_text_atomically

    header, rows = gradebook_rows(results, catalog)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomically(Path(path), buf.getvalue())
