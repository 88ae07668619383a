"""Benchmark instructor grading: sandboxed against in-process, one full submission, a rough batch.

    python benchmarks/bench_grading.py                  # all three parts
    python benchmarks/bench_grading.py --skip-batch     # only sandboxed vs in-process

1. The reference solutions graded by every exercise's hidden graders, in-process
   (``--no-sandbox``) and sandboxed, alternately, ``--repeats`` times each; medians
   and their ratio. Targets: sandboxed at most 1.5x in-process; one complete
   submission (every exercise) graded in under 3 minutes.
2. A batch of 30 submissions of ``--batch-exercise`` (default 2.3): 20 ordinary ones
   (references and stubs), 5 that crash (os._exit at import or in a call) and 5 that
   hang, graded with ``-j`` jobs and the default per-call time limit (or ``--timeout``).
   Target: it completes with 30 rows in the gradebook.
3. Start-up of a jailed worker, per jail this machine allows (``trusted`` = no jail):
   the fork server's start (bwrap, interpreter, torch and the engine imported) and a
   worker's start (fork, confinement, seccomp, the 2.3 reference imported), medians
   of ``--repeats`` and ratios against no jail.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from llmkit.catalog import load_catalog
from llmkit.grading import grade_batch, grade_submission
from llmkit.reports import write_reports

CRASH_AT_IMPORT = "import os\nos._exit(1)\n"
CRASH_IN_CALL = "import os\n\n\ndef {name}(*args, **kwargs):\n    os._exit(0)\n"
HANG = "def {name}(*args, **kwargs):\n    while True:\n        pass\n"


def time_grading(catalog, sandbox: bool, seed: int) -> tuple[float, float, float]:
    start = time.perf_counter()
    result = grade_submission(catalog.root / "solutions", catalog, seed=seed, sandbox=sandbox)
    return time.perf_counter() - start, result.points, result.max_points


def sandbox_vs_in_process(catalog, repeats: int) -> None:
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(repeats):
        for sandbox in (False, True) if i % 2 == 0 else (True, False):
            seconds, points, max_points = time_grading(catalog, sandbox, seed=1000 + i)
            times[sandbox].append(seconds)
            where = "sandboxed " if sandbox else "in-process"
            print(f"  run {i + 1} {where}: {seconds:6.1f} s, {points:g}/{max_points:g} points", flush=True)
    inproc, sandboxed = statistics.median(times[False]), statistics.median(times[True])
    print(f"grading the reference solutions, every exercise, median of {repeats}:")
    print(f"  in-process {inproc:6.1f} s   sandboxed {sandboxed:6.1f} s   ratio {sandboxed / inproc:.2f}x")
    print(f"  one complete submission, sandboxed: {sandboxed:.1f} s (target < 180 s)")


def build_batch(catalog, root: Path, exercise_id: str) -> list[Path]:
    exercise = catalog.get(exercise_id)
    names = {
        "2.3": "scaled_dot_product_attention",
        "1.2a": "Value",
        "1.3": "LSTMCell",
        "2.1": "train_bpe",
        "5.1": "LoRALinear",
        "7.1": "flash_attention_torch",
    }
    name = names.get(exercise_id, "main")
    sources = []
    for i in range(30):
        sub = root / f"s{i:02d}"
        target = sub / exercise.module
        target.parent.mkdir(parents=True)
        if i < 10:
            shutil.copy(catalog.root / "solutions" / exercise.module, target)
        elif i < 20:
            shutil.copy(catalog.root / "exercises" / exercise.module, target)
        elif i < 25:
            crash = CRASH_AT_IMPORT if i % 2 else CRASH_IN_CALL.format(name=name)
            target.write_text(crash)
        else:
            target.write_text(HANG.format(name=name))
        sources.append(sub)
    return sources


def batch(catalog, exercise_id: str, jobs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="llmkit-bench-grading-") as tmp:
        root = Path(tmp)
        sources = build_batch(catalog, root / "submissions", exercise_id)
        start = time.perf_counter()
        results = grade_batch(
            sources, catalog, root / "grades", exercises=[catalog.get(exercise_id)], jobs=jobs
        )
        write_reports(results, catalog, root / "grades")
        seconds = time.perf_counter() - start
        with open(root / "grades" / "gradebook.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        scores = [float(r.points) for r in results]
        print(f"batch of 30 ({exercise_id}: 10 references, 10 stubs, 5 crashers, 5 hangers), -j {jobs}:")
        print(f"  {seconds:.1f} s, {len(rows)} gradebook rows (target 30)")
        print(f"  scores: references {scores[:10]}, stubs {scores[10:20]}")
        print(f"          crashers {scores[20:25]}, hangers {scores[25:]}")


def jail_startup(catalog, repeats: int) -> None:
    import sys

    import llmkit
    from llmkit.sandbox.launch import JailUnavailable, choose_jail
    from llmkit.sandbox.session import Sandbox

    module = catalog.root / "solutions" / catalog.get("2.3").module
    allowed = [Path(sys.prefix), Path(sys.base_prefix), Path(llmkit.__file__).parent]
    medians = {}
    for kind in ("trusted", "namespaces", "user"):
        try:
            jail = choose_jail(kind)
            servers, workers = [], []
            for _ in range(repeats):
                sandbox = Sandbox(protected=[catalog.root], allowed=allowed, jail=jail)
                try:
                    start = time.perf_counter()
                    sandbox.module("warm", [module], ())  # waits for the fork server
                    servers.append(time.perf_counter() - start)
                    for i in range(3):
                        start = time.perf_counter()
                        sandbox.module(f"w{i}", [module], ())
                        workers.append(time.perf_counter() - start)
                finally:
                    sandbox.close()
        except JailUnavailable as exc:
            print(f"  {kind:10s}: not available here ({str(exc)[:120]})")
            continue
        medians[kind] = statistics.median(servers), statistics.median(workers)
    base_server, base_worker = medians.get("trusted", (None, None))
    print(f"jailed start-up, median of {repeats} fork servers and {3 * repeats} workers:")
    for kind, (server, worker) in medians.items():
        ratio = ""
        if base_server:
            ratio = f"   ({server / base_server:.2f}x, {worker / base_worker:.2f}x no jail)"
        print(f"  {kind:10s}: fork server {server * 1000:7.0f} ms   worker {worker * 1000:6.1f} ms{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="gradings of the references per mode")
    parser.add_argument("--batch-exercise", default="2.3")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=None, help="per-call limit in seconds (sandbox)")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument("--skip-startup", action="store_true")
    args = parser.parse_args()
    if args.timeout:
        os.environ["LLMKIT_SANDBOX_TIMEOUT"] = str(args.timeout)
    catalog = load_catalog()
    print(f"# grading benchmark: {platform.machine()}, {os.cpu_count()} CPUs, repeats={args.repeats}")
    if not args.skip_compare:
        sandbox_vs_in_process(catalog, args.repeats)
    if not args.skip_startup:
        jail_startup(catalog, args.repeats)
    if not args.skip_batch:
        batch(catalog, args.batch_exercise, args.jobs)


if __name__ == "__main__":
    main()
