"""Peak memory of the Gradescope autograder, whole and per exercise.

For each bundle (every exercise together, then each exercise alone, or those given
with --only), :func:`llmkit.gradescope_memory.measure_bundle` builds the zip, lays it
out as Gradescope does, grades the reference modules with run_autograder and samples,
every 20 ms, the summed proportional set size (PSS) of its whole process tree: the
memory the processes hold together, which a container's limit (Gradescope's default:
768 MB) is held against. (Summed RSS would count a forked worker's shared copy of torch
again.) `llmkit gradescope build --max-memory MB` plans its split from the same runs.

    python benchmarks/gradescope_memory.py                  # all together, then each alone
    python benchmarks/gradescope_memory.py --only 2.3 5.1   # those, together and alone
"""

from __future__ import annotations

import argparse

from llmkit.catalog import find_project_root, load_catalog
from llmkit.gradescope_memory import MB, measure_bundle


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", help="exercise ids (default: all)")
    args = parser.parse_args()
    catalog = load_catalog(find_project_root())
    chosen = [catalog.get(i) for i in args.only] if args.only else list(catalog.exercises)
    runs = [chosen] + ([[ex] for ex in chosen] if len(chosen) > 1 else [])
    print(f"{'bundle':<40} {'peak PSS (MB)':>14} {'wall (s)':>9} {'score':>7}")
    for exercises in runs:
        m = measure_bundle(catalog, exercises)
        name = ", ".join(m.ids) if len(m.ids) <= 4 else f"all {len(m.ids)} exercises"
        print(f"{name:<40} {m.peak / MB:>14.0f} {m.seconds:>9.1f} {m.score:>7g}", flush=True)


if __name__ == "__main__":
    main()
