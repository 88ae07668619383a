"""Peak memory of a Gradescope autograder, and bundles split to fit a memory limit.

Gradescope holds an autograder's whole container to a memory limit (768 MB unless the
course pays for more). What grading a submission takes is measured, not estimated:
memory does not add up by exercise (graded alone, 2.3 takes 456 MB and 6.3 539 MB;
together, 615 MB), so a plan is made from runs of the real thing.

* :func:`tree_memory` — the summed proportional set size (PSS) of a process and all
  its descendants: a page shared by n processes (a forked worker's copy-on-write torch)
  counts 1/n in each, so the sum is what they hold together, as a container limit sees it.
* :func:`measure_bundle` — builds the autograder zip for some exercises, lays it out as
  Gradescope does, grades the reference solutions with ``run_autograder`` and samples
  its process tree's PSS every 20 ms: the peak, the wall time and the score.
* :func:`plan_bundles` — ``llmkit gradescope build --max-memory MB``: the whole bundle
  when it fits; else one bundle per section, and a section that does not fit split into
  runs of consecutive exercises, each run measured as it grows. An exercise that does
  not fit alone stops the plan with its measured peak.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from llmkit.catalog import Catalog, Exercise
from llmkit.gradescope_bundle import BundleError, build_bundle

SAMPLE_EVERY_S = 0.02
MB = 2**20


def tree_memory(root_pid: int) -> int:
    """Summed PSS in bytes of ``root_pid`` and its descendants (0 for a process that is gone)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


@dataclass(frozen=True)
class Measurement:
    ids: tuple[str, ...]
    peak: int  # bytes
    seconds: float
    score: float
    points: int


def measure_bundle(
    catalog: Catalog, exercises: list[Exercise], *, python: str = sys.executable
) -> Measurement:
    """Grade the reference solutions of ``exercises`` with their autograder, as Gradescope
    would, and return the peak memory of ``run_autograder``'s process tree.

    A reference that does not score full points makes the figure meaningless (grading
    stopped early), so that is an error naming the exercises.
    """
    missing = [ex.id for ex in exercises if not (catalog.root / "solutions" / ex.module).is_file()]
    if missing:
        raise BundleError(
            f"measuring memory grades the reference solutions, and solutions/ lacks {', '.join(missing)}: "
            "run it from the kit's own checkout"
        )
    with tempfile.TemporaryDirectory(prefix="llmkit-gs-memory-") as tmp:
        root = Path(tmp) / "autograder"
        for sub in ("source", "submission", "results"):
            (root / sub).mkdir(parents=True)
        zip_path = build_bundle(catalog, exercises, Path(tmp) / "autograder.zip").path
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(root / "source")
        for ex in exercises:
            target = root / "submission" / ex.module
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(catalog.root / "solutions" / ex.module, target)
        env = dict(os.environ, AUTOGRADER_ROOT=str(root), LLMKIT_PYTHON=python)
        env.pop("LLMKIT_ROOT", None)
        started = time.perf_counter()
        proc = subprocess.Popen(
            ["bash", str(root / "source" / "run_autograder")],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak = 0

        def sample() -> None:
            nonlocal peak
            while proc.poll() is None:
                peak = max(peak, tree_memory(proc.pid))
                time.sleep(SAMPLE_EVERY_S)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        sampler.join()
        seconds = time.perf_counter() - started
        try:
            results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
            score = float(results["score"])
            lost = [
                f"{t['name']}: {(str(t.get('output', '')).strip().splitlines() or [''])[0][:200]}"
                for t in results.get("tests", [])
                if t.get("score", 0) < t.get("max_score", 0)
            ]
        except (OSError, ValueError, KeyError, TypeError):
            score, lost = 0.0, ["run_autograder wrote no readable results.json"]
    ids = tuple(ex.id for ex in exercises)
    points = sum(ex.points for ex in exercises)
    if score < points:
        raise BundleError(
            f"the reference solutions of {', '.join(ids)} scored {score:g}/{points} under run_autograder, "
            "so its memory is not what grading takes; run `llmkit author-check` on them. Points lost:\n  "
            + "\n  ".join(lost)
        )
    return Measurement(ids, peak, seconds, score, points)


@dataclass(frozen=True)
class Group:
    """Exercises graded by one autograder, and the peak measured for them together."""

    exercises: tuple[Exercise, ...]
    peak: int

    @property
    def label(self) -> str:
        return "+".join(ex.id for ex in self.exercises)


def plan_bundles(
    exercises: list[Exercise],
    limit: int,
    measure: Callable[[list[Exercise]], int],
    say: Callable[[str], None] = lambda line: None,
) -> list[Group]:
    """Groups of ``exercises`` (in catalog order) whose measured peaks are each ≤ ``limit``
    bytes: all of them when they fit; else a group per section, and a section that does
    not fit split into runs of consecutive exercises. ``measure(exercises)`` is the peak
    in bytes of grading them together; ``say`` hears one line per measurement."""
    ordered = sorted(exercises, key=lambda ex: ex.sort_key)

    def measured(members: list[Exercise]) -> int:
        peak = measure(members)
        verdict = "fits" if peak <= limit else "over"
        say(f"  {'+'.join(ex.id for ex in members):<32} {peak / MB:7.0f} MB  {verdict}")
        return peak

    whole = measured(ordered)
    if whole <= limit:
        return [Group(tuple(ordered), whole)]
    sections = [list(members) for _, members in groupby(ordered, key=lambda ex: ex.section)]
    groups: list[Group] = []
    for members in sections:
        peak = whole if len(sections) == 1 else measured(members)
        if peak <= limit:
            groups.append(Group(tuple(members), peak))
            continue
        run: list[Exercise] = []
        run_peak = 0
        for ex in members:
            peak = measured([*run, ex])
            if peak <= limit:
                run, run_peak = [*run, ex], peak
                continue
            if not run:
                raise BundleError(_too_large(ex, peak, limit))
            groups.append(Group(tuple(run), run_peak))
            peak = measured([ex])
            if peak > limit:
                raise BundleError(_too_large(ex, peak, limit))
            run, run_peak = [ex], peak
        groups.append(Group(tuple(run), run_peak))
    return groups


def _too_large(ex: Exercise, peak: int, limit: int) -> str:
    return (
        f"exercise {ex.id} alone takes {peak / MB:.0f} MB to grade, above --max-memory {limit / MB:.0f} MB; "
        "no split helps: raise the assignment's memory limit on Gradescope"
    )


def group_output(output: Path, group: Group, groups: list[Group], catalog: Catalog) -> Path:
    """Where ``group``'s zip goes: ``output`` itself for a single group, else beside it with
    the group's label: ``autograder-section2.zip``, ``autograder-7.1+7.2.zip``."""
    if len(groups) == 1:
        return output
    sections = {ex.section for ex in group.exercises}
    whole_section = len(sections) == 1 and {ex.id for ex in group.exercises} == {
        ex.id for ex in catalog.exercises if ex.section in sections
    }
    label = f"section{sections.pop()}" if whole_section else group.label
    return output.with_name(f"{output.stem}-{label}{output.suffix}")
