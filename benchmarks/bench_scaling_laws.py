"""Benchmark exercise 2.6: fit_chinchilla (400 runs) and fit_power_law (40 runs) against the
graders' own fits, same run, against the 2 s budget of a Chinchilla fit.

    python benchmarks/bench_scaling_laws.py                    # the reference solution
    python benchmarks/bench_scaling_laws.py --impl exercises   # your work
    python benchmarks/bench_scaling_laws.py --impl graders/mutants/section2/scaling_laws__every_grid_point.py

Times are medians of interleaved repeats (llmkit.timing.compare_fixed) of CPU time
(time.process_time, one BLAS thread): the graders time the sandboxed fit by its CPU
time too. The graders' fits are scipy's least_squares from the best 2 points of the
paper's grid (as in the speed test) and curve_fit from 12 starts.
"""

from __future__ import annotations

import time

from threadpoolctl import threadpool_limits

from llmkit.bench import benchmark_parser, header, load_benchmarked
from llmkit.support import load_oracle, load_support
from llmkit.timing import compare_fixed

BUDGET_S = 2.0


def main() -> None:
    args = benchmark_parser(__doc__, repeats=5, threads=0).parse_args()
    impl = load_benchmarked(args, "2.6")
    support, oracle = load_support("2.6"), load_oracle("2.6")
    threadpool_limits(1)
    print(header("scaling laws", args, clock="process_time"))
    laws = {"Hoffmann et al.": support.HOFFMANN, "Besiroglu et al.": support.BESIROGLU}
    laws.update({f"random law {seed}": support.random_law(seed) for seed in (1, 2)})
    columns = f"{'yours s':>8} {'graders s':>10} {'ratio':>6}  {'budget 2 s':>10}"
    print(f"{'fit_chinchilla, 400 runs of':<30} {columns}")
    for name, law in laws.items():
        N, D, L = support.sweep(law, seed=0)
        speed = compare_fixed(
            lambda: impl.fit_chinchilla(N, D, L),
            lambda: oracle.fit_chinchilla(N, D, L, refined=2),
            repeats=args.repeats,
            number=1,
            clock=time.process_time,
        )
        verdict = "ok" if speed.candidate_s <= BUDGET_S else "over"
        print(
            f"{name:<30} {speed.candidate_s:8.3f} {speed.baseline_s:10.3f} {speed.ratio:6.2f}  {verdict:>10}"
        )
    N, L = support.power_law_runs(seed=0)
    speed = compare_fixed(
        lambda: impl.fit_power_law(N, L),
        lambda: oracle.fit_power_law(N, L),
        repeats=args.repeats,
        clock=time.process_time,
    )
    times = f"{speed.candidate_s:8.4f} {speed.baseline_s:10.4f} {speed.ratio:6.2f}"
    print(f"\n{'fit_power_law, 40 runs':<30} {times}")


if __name__ == "__main__":
    main()
