"""exercism test-runner ``results.json``, interface version 3
(https://exercism.org/docs/building/tooling/test-runners/interface)."""

from __future__ import annotations

from llmkit.reports.gradescope import label_of, message_of
from llmkit.result import SubmissionResult

STATUS = {"passed": "pass", "failed": "fail", "not_started": "fail", "error": "error"}


def exercism_results(result: SubmissionResult, catalog=None) -> dict:
    """The submission as an exercism version-3 results document.

    ``task_id`` is the exercise's 1-based position in the catalog (in ``result.exercises`` when no
    catalog is given). Skipped (no GPU) tests are left out: they were not run. An exercise with no
    module and no tests gets one failing entry. Overall: ``error`` when the submission could not be
    graded or no test ran, ``pass`` when every test passed, else ``fail``.
    """
    order = [ex.id for ex in catalog.exercises] if catalog is not None else [e.id for e in result.exercises]
    task = {ex_id: i for i, ex_id in enumerate(order, start=1)}
    tests = []
    for t in result.tests:
        if t.status not in STATUS:  # skipped: not run
            continue
        entry = {"name": label_of(t), "status": STATUS[t.status]}
        if t.status != "passed":
            entry["message"] = message_of(t)
        entry["test_code"] = t.id
        if t.exercise in task:
            entry["task_id"] = task[t.exercise]
        tests.append(entry)
    with_tests = {t.exercise for t in result.tests}
    for e in result.exercises:
        if e.status == "missing" and e.id not in with_tests:
            entry = {
                "name": f"{e.id} {e.title}",
                "status": "fail",
                "message": e.message or "missing: the submission has no module for this exercise",
                "test_code": e.id,
            }
            if e.id in task:
                entry["task_id"] = task[e.id]
            tests.append(entry)

    doc: dict = {"version": 3}
    if result.error:
        doc.update(status="error", message=result.error)
    elif not tests:
        skipped = any(t.status == "skipped" for t in result.tests)
        doc.update(status="error", message="not graded: no GPU" if skipped else "no tests ran")
    elif all(t["status"] == "error" for t in tests):
        doc.update(status="error", message=f"no test could run; the first said: {tests[0]['message']}")
    elif all(t["status"] == "pass" for t in tests):
        doc["status"] = "pass"
    else:
        doc["status"] = "fail"
    doc["tests"] = tests
    return doc
