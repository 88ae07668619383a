"""How long `pytest exercises/sectionN` takes, per section, on the reference and on the stubs.

Issue 13's budget: under 10 s per section on 2 cores, Python start-up excluded. The time
quoted is pytest's own ("N passed in X s": collection, the support modules and the tests),
the median of --repeats runs, run one after another so the two roots see the same machine.

    python benchmarks/bench_public_tests.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 10.0
DURATION = re.compile(r" in (?P<seconds>[0-9.]+)s")


def pytest_seconds(section: Path, impl: str) -> float:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(section), "--impl", impl],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    matches = DURATION.findall(run.stdout.splitlines()[-1] if run.stdout else "")
    if not matches:
        raise SystemExit(f"pytest {section} --impl {impl} printed no duration:\n{run.stdout[-2000:]}")
    return float(matches[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sections = sorted((ROOT / "exercises").glob("section*/"), key=lambda p: int(p.name[len("section") :]))
    print(f"{'section':<10}{'reference s':>13}{'stubs s':>10}{'budget':>9}")
    over = 0
    for section in sections:
        medians = []
        for impl in ("solutions", "exercises"):
            medians.append(statistics.median(pytest_seconds(section, impl) for _ in range(args.repeats)))
        ok = max(medians) < BUDGET_S
        over += not ok
        print(f"{section.name:<10}{medians[0]:>13.2f}{medians[1]:>10.2f}{'ok' if ok else 'OVER':>9}")
    print(f"(medians of {args.repeats} runs; pytest's own duration; budget {BUDGET_S:g} s per section)")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
