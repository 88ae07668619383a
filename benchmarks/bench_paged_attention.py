"""Benchmark exercise 7.5: paged_attention against torch's SDPA on contiguous keys and values.

    python benchmarks/bench_paged_attention.py                    # the reference solution
    python benchmarks/bench_paged_attention.py --impl exercises   # your work
    python benchmarks/bench_paged_attention.py --clock cpu        # this thread's CPU time
    python benchmarks/bench_paged_attention.py --clock cpu \
        --impl graders/mutants/section7/paged_attention__loop_over_sequences.py

Each case is one decode step: S sequences with context lengths between max_len / 2 and
max_len, their blocks scattered over a shuffled cache. The baseline gets the same keys
and values already contiguous, padded to the longest context, with a length mask: what
attention costs when nothing has to be gathered. Times are medians of interleaved
repeats (llmkit.timing.compare_fixed); ratio = paged time / contiguous time (the
target is at most 3x; the grader times the first case).
"""

from __future__ import annotations

import time

from llmkit.bench import benchmark_parser, header, load_benchmarked
from llmkit.support import load_support
from llmkit.timing import compare_fixed

support = load_support("7.5")

CASES = [  # (S, H, D, block_size, max_len); the first is the speed grader's
    (64, 2, 16, 4, 16),
    (32, 2, 16, 4, 32),
    (48, 4, 16, 8, 24),
    (32, 4, 32, 8, 32),
    (32, 4, 64, 16, 128),
    (16, 8, 64, 16, 512),
    (8, 8, 128, 16, 2048),
]


def main() -> None:
    parser = benchmark_parser(__doc__, repeats=9, threads=1)  # one thread, as the graders time it
    parser.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall", help="wall time or thread CPU time"
    )
    args = parser.parse_args()
    impl = load_benchmarked(args, "7.5")
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    print(header("paged_attention", args, dtype="float32", clock=args.clock))
    print(f"{'case (S, H, D, block_size, max_len)':<40} {'paged ms':>9} {'contig ms':>9} {'ratio':>6}")
    for s, h, d, bs, max_len in CASES:
        paged, flat = support.speed_inputs(0, n_seqs=s, heads=h, dim=d, block_size=bs, max_len=max_len)
        r = compare_fixed(
            lambda: impl.paged_attention(*paged),
            lambda: support.contiguous_attention(*flat),
            repeats=args.repeats,
            clock=clock,
        )
        case = f"S={s} H={h} D={d} bs={bs} max_len={max_len}"
        print(f"{case:<40} {r.candidate_s * 1e3:9.3f} {r.baseline_s * 1e3:9.3f} {r.ratio:6.2f}")


if __name__ == "__main__":
    main()
