"""Peak memory of the Gradescope autograder, whole and per exercise.

For each bundle (every exercise together, then each exercise alone, or those given
with --only), it builds the zip with `llmkit gradescope build`, lays it out as
Gradescope does (/autograder/source, submission, results), puts the reference
modules in submission/, runs run_autograder and samples, every 20 ms, the summed
proportional set size (PSS) of run_autograder's whole process tree: the memory the
processes hold together, which a container's limit (Gradescope's default: 768 MB) is
held against. (Summed RSS would count a forked worker's shared copy of torch again.)

    python benchmarks/gradescope_memory.py                  # all together, then each alone
    python benchmarks/gradescope_memory.py --only 2.3 5.1   # those, together and alone
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from llmkit.catalog import find_project_root, load_catalog


def tree_memory(root_pid: int) -> int:
    """Summed proportional set size (PSS, bytes) of ``root_pid`` and all its descendants:
    a page shared by n processes (a forked worker's copy-on-write torch) counts 1/n in each,
    so the sum is what the processes hold together, as a container's limit sees it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
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


def measure(project: Path, ids: list[str], workdir: Path) -> tuple[int, float, float]:
    """(peak bytes, seconds, score) of run_autograder on the reference modules of ``ids``."""
    catalog = load_catalog(project)
    bundle = workdir / "autograder.zip"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "llmkit.cli",
            "gradescope",
            "build",
            "-o",
            str(bundle),
            "--only",
            ",".join(ids),
        ],
        cwd=project,
        check=True,
        capture_output=True,
    )
    root = workdir / "autograder"
    for sub in ("source", "submission", "results"):
        (root / sub).mkdir(parents=True)
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    for ex_id in ids:
        module = catalog.get(ex_id).module
        (root / "submission" / module).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(project / "solutions" / module, root / "submission" / module)
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), LLMKIT_PYTHON=sys.executable)
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
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    proc.wait()
    sampler.join()
    seconds = time.perf_counter() - started
    import json

    results = json.loads((root / "results" / "results.json").read_text())
    return peak, seconds, float(results["score"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", help="exercise ids (default: all)")
    args = parser.parse_args()
    project = find_project_root()
    catalog = load_catalog(project)
    ids = args.only or [ex.id for ex in catalog.exercises]
    runs = [ids] + ([[i] for i in ids] if len(ids) > 1 else [])
    print(f"{'bundle':<40} {'peak PSS (MB)':>14} {'wall (s)':>9} {'score':>7}")
    for chosen in runs:
        with tempfile.TemporaryDirectory(prefix="gs-memory-") as tmp:
            peak, seconds, score = measure(project, chosen, Path(tmp))
        name = ", ".join(chosen) if len(chosen) <= 4 else f"all {len(chosen)} exercises"
        print(f"{name:<40} {peak / 2**20:>14.0f} {seconds:>9.1f} {score:>7g}", flush=True)


if __name__ == "__main__":
    main()
