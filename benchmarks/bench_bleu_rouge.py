"""Benchmark exercise 6.2: an implementation's BLEU and ROUGE against sacrebleu and rouge_score.

    python benchmarks/bench_bleu_rouge.py                    # the reference solution
    python benchmarks/bench_bleu_rouge.py --impl exercises   # your work
    python benchmarks/bench_bleu_rouge.py --impl \
        graders/mutants/section6/bleu_rouge__ngrams_counted_by_scanning.py

The issue's target: corpus_bleu on 2,000 sentences within 2x sacrebleu's time. Two
baselines: sacrebleu on strings joined beforehand (its own input format: the strict
comparison), and sacrebleu given the same token lists (joined, then re-split by
sacrebleu: the speed grader's baseline). Times are medians of interleaved repeats
(llmkit.timing.compare_fixed); ratio = implementation time / library time (lower is
better, 1.0 = as fast). Every answer is checked against the library's once first.
"""

from __future__ import annotations

import math

from llmkit.bench import benchmark_parser, header, load_benchmarked
from llmkit.support import load_support
from llmkit.timing import compare_fixed

support = load_support("6.2")


def _close(got, want, what: str) -> None:
    flat_got = [got[0], *got[1], got[2]] if isinstance(got[1], list) else list(got)
    flat_want = [want[0], *want[1], want[2]] if isinstance(want[1], list) else list(want)
    if not all(math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-9) for g, w in zip(flat_got, flat_want)):
        raise SystemExit(f"{what}: the implementation's answer {got} differs from the library's {want}")


def main() -> None:
    args = benchmark_parser(__doc__, repeats=5, threads=0).parse_args()
    impl = load_benchmarked(args, "6.2")
    print(header("bleu_rouge", args))
    print(f"{'case':<58} {'impl ms':>9} {'lib ms':>9} {'ratio':>6}")

    def row(case: str, candidate, baseline) -> None:
        r = compare_fixed(candidate, baseline, repeats=args.repeats)
        print(f"{case:<58} {r.candidate_s * 1e3:9.1f} {r.baseline_s * 1e3:9.1f} {r.ratio:6.2f}")

    for n, label in ((2000, "2,000"), (200, "200 (grader)")):
        hyps, refs = support.speed_corpus(0, n)
        _close(impl.corpus_bleu(hyps, refs), support.sacrebleu_bleu(hyps, refs), f"corpus_bleu on {n}")
        metric = support._bleu_metric(4, "exp")
        joined = [" ".join(h) for h in hyps]
        streams = support.reference_streams(refs)
        row(
            f"corpus_bleu, {label} sentences vs sacrebleu, strings",
            lambda: impl.corpus_bleu(hyps, refs),
            lambda: metric.corpus_score(joined, streams),
        )
        row(
            f"corpus_bleu, {label} sentences vs sacrebleu, tokens",
            lambda: impl.corpus_bleu(hyps, refs),
            lambda: support.sacrebleu_bleu(hyps, refs),
        )

    pairs = [support.rouge_texts(seed, max_len=30, vocab_size=12) for seed in range(2000)]
    summaries = [support.rouge_texts(seed, max_len=20, vocab_size=12, lines=4) for seed in range(500)]
    for name, function, kind, data, n in (
        ("rouge_n(n=2)", lambda p, t: impl.rouge_n(p, t, 2), "rouge2", pairs, "2,000 pairs"),
        ("rouge_l", impl.rouge_l, "rougeL", pairs, "2,000 pairs"),
        ("rouge_lsum", impl.rouge_lsum, "rougeLsum", summaries, "500 4-line summaries"),
    ):
        for p, t in data[:50]:
            _close(function(p, t), support.rouge_score_oracle(kind, p, t), name)
        row(
            f"{name}, {n} vs rouge_score",
            lambda function=function, data=data: [function(p, t) for p, t in data],
            lambda kind=kind, data=data: [support.rouge_score_oracle(kind, p, t) for p, t in data],
        )


if __name__ == "__main__":
    main()
