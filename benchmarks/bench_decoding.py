"""Benchmark exercise 3.2: an implementation's filters against transformers' processors, same run.

    python benchmarks/bench_decoding.py                    # the reference solution
    python benchmarks/bench_decoding.py --impl exercises   # your work
    python benchmarks/bench_decoding.py --impl graders/mutants/section3/decoding__top_k_full_sort.py

Every case is (B, V) float32 logits, V = 50 257 (GPT-2's vocabulary); the first rows are
the speed graders' case (64 rows), then a single row (one sequence decoding) and a larger
batch. Times are medians of interleaved repeats (llmkit.timing.compare_fixed) with one
torch thread, as the graders time them; ratio = implementation time / transformers time
(lower is better, 1.0 = as fast). The graders allow top-k and top-p 3x, the penalty 8x.
"""

from __future__ import annotations

import torch
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from llmkit.bench import benchmark_parser, header, load_benchmarked
from llmkit.timing import compare_fixed

VOCAB = 50257
BATCHES = [64, 1, 256]
IDS_PER_ROW = 256


def main() -> None:
    args = benchmark_parser(__doc__, repeats=7, threads=1).parse_args()
    impl = load_benchmarked(args, "3.2")
    print(header("decoding", args, dtype="float32", vocab=VOCAB))
    print(f"{'case':<44} {'impl ms':>9} {'hf ms':>9} {'ratio':>6}")
    gen = torch.Generator().manual_seed(0)
    for batch in BATCHES:
        logits = torch.randn(batch, VOCAB, generator=gen)
        ids = torch.randint(0, VOCAB, (batch, IDS_PER_ROW), generator=gen)
        penalty = RepetitionPenaltyLogitsProcessor(1.3)
        cases = [
            (
                "temperature 0.7",
                lambda: impl.apply_temperature(logits, 0.7),
                lambda: TemperatureLogitsWarper(0.7)(None, logits),
            ),
            ("top_k k=50", lambda: impl.top_k_filter(logits, 50), lambda: TopKLogitsWarper(50)(None, logits)),
            (
                "top_p p=0.9",
                lambda: impl.top_p_filter(logits, 0.9),
                lambda: TopPLogitsWarper(0.9)(None, logits),
            ),
            (
                f"repetition_penalty 1.3, {IDS_PER_ROW} ids/row",
                lambda: impl.repetition_penalty(logits, ids, 1.3),
                lambda: penalty(ids, logits),
            ),
        ]
        for name, mine, theirs in cases:
            r = compare_fixed(mine, theirs, repeats=args.repeats)
            case = f"B={batch:<4} {name}"
            print(f"{case:<44} {r.candidate_s * 1e3:9.3f} {r.baseline_s * 1e3:9.3f} {r.ratio:6.2f}")


if __name__ == "__main__":
    main()
