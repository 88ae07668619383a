"""Benchmark exercise 0.1: an implementation's n-gram counting against Counter(zip(...)), same run.

    python benchmarks/bench_counting.py                    # the reference solution
    python benchmarks/bench_counting.py --impl exercises   # your work
    python benchmarks/bench_counting.py --tokens 30000 \
        --impl graders/mutants/section0/counting__counter_added_per_sentence.py

The issue's target: counting 1M tokens within 2x a collections.Counter(zip(...))
baseline. The corpus is the kit's own (support.zipf_corpus: sentences of 5..24 words
drawn from a Zipf law, seeded), so nothing is read from disk.

* count_ngrams: impl.count_ngrams(sentences, n) vs the baseline, one Counter updated
  with zip(...) over each padded sentence, returned as a dict (what the grader times).
* fit: impl.NGramLM(n).fit(sentences) (counts, context counts and vocabulary) vs the
  same baseline, for scale: fit does more than count, so no target applies.

Times are medians of interleaved repeats (llmkit.timing.compare_fixed);
ratio = implementation time / baseline time (lower is better, 1.0 = as fast).
"""

from __future__ import annotations

from collections import Counter

from llmkit.bench import benchmark_parser, header, load_benchmarked
from llmkit.support import load_support
from llmkit.timing import compare_fixed

support = load_support("0.1")


def counter_zip(sentences, n):
    counts: Counter = Counter()
    start = [support.BOS] * (n - 1)
    for sentence in sentences:
        padded = start + sentence + [support.EOS]
        counts.update(zip(*(padded[i:] for i in range(n))))
    return dict(counts)


def main() -> None:
    parser = benchmark_parser(__doc__, repeats=5, threads=0)
    parser.add_argument("--tokens", type=int, default=1_000_000, help="corpus size of the largest case")
    args = parser.parse_args()
    impl = load_benchmarked(args, "0.1")
    print(header("n-gram counting", args, tokens=args.tokens))
    print(f"{'case':<46} {'impl ms':>9} {'Counter ms':>10} {'ratio':>6}")
    cases = [(args.tokens // 10, 50), (args.tokens, 50), (args.tokens, 5000)]
    for tokens, vocab_size in cases:
        sentences = support.zipf_corpus(tokens, vocab_size, seed=0)
        size = sum(map(len, sentences))
        for n in (2, 3):
            runs = [
                ("count_ngrams", lambda: impl.count_ngrams(sentences, n)),
                ("fit", lambda: impl.NGramLM(n).fit(sentences)),
            ]
            for what, candidate in runs:
                r = compare_fixed(candidate, lambda: counter_zip(sentences, n), repeats=args.repeats)
                case = f"{what} n={n} {size:,} tokens V={vocab_size}"
                print(f"{case:<46} {r.candidate_s * 1e3:9.1f} {r.baseline_s * 1e3:10.1f} {r.ratio:6.2f}")


if __name__ == "__main__":
    main()
