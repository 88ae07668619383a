"""HTML class report and per-learner feedback (jinja2, autoescaped, self-contained pages)."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import jinja2

from llmkit.reports.gradebook import fmt_points, gradebook_rows, max_score
from llmkit.reports.gradescope import label_of, message_of, metric_label, speed_metrics
from llmkit.result import SubmissionResult

CHART_W, CHART_H, AXIS_H = 360, 110, 18
HARDEST = 10
NOT_PASSED = ("failed", "not_started", "error")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("llmkit", "reports/templates"),
        autoescape=jinja2.select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pts"] = fmt_points
    return env


def _render(template: str, path, **context) -> None:
    from llmkit.result import write_text_atomically

    write_text_atomically(Path(path), environment().get_template(template).render(**context))


def _safe_url(url: str) -> str | None:
    """Only http(s) links become hrefs."""
    return url if url.lower().startswith(("https://", "http://")) else None


def histogram(scores: list[float], max_points: float) -> dict:
    """Bars of an SVG histogram: one bin per whole point from 0 to ``max_points``."""
    top = max(0, math.ceil(max_points))
    counts = [0] * (top + 1)
    for s in scores:
        counts[min(top, max(0, math.floor(s + 1e-9)))] += 1
    peak = max(counts) or 1
    bar_w = CHART_W / len(counts)
    step = max(1, math.ceil(len(counts) / 10))  # at most ~10 axis labels
    bars = []
    for i, n in enumerate(counts):
        h = round(CHART_H * n / peak, 1)
        bars.append(
            {
                "x": round(i * bar_w, 1),
                "w": round(max(bar_w - 1, 1), 1),
                "y": round(CHART_H - h, 1),
                "h": h,
                "count": n,
                "points": i,
                "label": i % step == 0 or i == top,
                "cx": round(i * bar_w + bar_w / 2, 1),
            }
        )
    return {"bars": bars, "width": CHART_W, "height": CHART_H + AXIS_H, "base": CHART_H, "peak": peak}


def class_context(results: list[SubmissionResult], catalog) -> dict:
    """Everything the class report shows, as plain data."""
    results = sorted(results, key=lambda r: r.submission)
    totals = [r.points for r in results]
    charts = []
    for ex in catalog.exercises:
        scores = []
        for r in results:
            e = next((e for e in r.exercises if e.id == ex.id), None)
            scores.append(e.points if e else 0.0)
        mean = statistics.fmean(scores) if scores else 0.0
        charts.append(
            {"id": ex.id, "title": ex.title, "max": ex.points, "mean": mean, **histogram(scores, ex.points)}
        )

    stats: dict[str, dict] = {}
    for r in results:
        for t in r.tests:
            if t.status == "skipped":
                continue
            s = stats.setdefault(t.id, {"id": t.id, "label": label_of(t), "passed": 0, "total": 0})
            s["total"] += 1
            s["passed"] += t.status == "passed"
    failing = [s for s in stats.values() if s["passed"] < s["total"]]
    hardest = sorted(failing, key=lambda s: (s["passed"] / s["total"], -s["total"], s["id"]))[:HARDEST]

    boards: dict[tuple[str, str], list] = defaultdict(list)
    for r in results:
        for key, value in speed_metrics(r).items():
            boards[key].append({"submission": r.submission, "value": value})
    leaderboards = [
        {"name": metric_label(ex, metric), "rows": sorted(rows, key=lambda x: (x["value"], x["submission"]))}
        for (ex, metric), rows in sorted(boards.items())
    ]

    header, rows = gradebook_rows(results, catalog)
    return {
        "n": len(results),
        "max_total": sum(ex.points for ex in catalog.exercises),
        "mean": statistics.fmean(totals) if totals else 0.0,
        "median": statistics.median(totals) if totals else 0.0,
        "n_errors": sum(bool(r.error) for r in results),
        "charts": charts,
        "hardest": hardest,
        "leaderboards": leaderboards,
        "header": header,
        "rows": rows,
        "errors": [{"submission": r.submission, "error": r.error} for r in results if r.error],
    }


def feedback_context(result: SubmissionResult, catalog) -> dict:
    """Everything one learner's feedback page shows, as plain data."""
    order = {ex.id: i for i, ex in enumerate(catalog.exercises)}
    exercises = []
    for e in sorted(result.exercises, key=lambda e: (order.get(e.id, len(order)), e.id)):
        ex = next((x for x in catalog.exercises if x.id == e.id), None)
        full = e.max_points > 0 and e.points >= e.max_points
        help_wanted = not full and e.status != "not_graded" and ex is not None
        tests = [t for t in result.tests if t.exercise == e.id]
        exercises.append(
            {
                "id": e.id,
                "title": e.title or (ex.title if ex else ""),
                "points": e.points,
                "max": e.max_points,
                "status": e.status,
                "message": e.message,
                "passed": sum(t.status == "passed" for t in tests),
                "graded": sum(t.status != "skipped" for t in tests),
                "skipped": sum(t.status == "skipped" for t in tests),
                "failures": [
                    {"label": label_of(t), "status": t.status, "message": message_of(t)}
                    for t in tests
                    if t.status in NOT_PASSED
                ],
                "hint": ex.hints[0] if help_wanted and ex.hints else None,
                "resources": (
                    [{"title": r.title, "url": _safe_url(r.url), "text": r.url} for r in ex.resources]
                    if help_wanted
                    else []
                ),
            }
        )
    return {
        "submission": result.submission,
        "seed": result.seed,
        "graded_at": result.graded_at,
        "implementation": result.implementation,
        "error": result.error,
        "points": result.points,
        "max": max_score(result, catalog),
        "exercises": exercises,
    }


def write_class_report(results: list[SubmissionResult], catalog, path) -> None:
    """The class report: counts, score histograms, hardest tests, speed leaderboards, gradebook, errors."""
    _render("class_report.html.j2", path, **class_context(results, catalog))


def write_feedback(result: SubmissionResult, catalog, path) -> None:
    """One learner's feedback page: points per exercise, failures, hints and resources, replay seed."""
    _render("feedback.html.j2", path, **feedback_context(result, catalog))
