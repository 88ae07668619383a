"""Benchmark exercise 0.2: an implementation's batched SGNS gradient against torch autograd, same run.

    python benchmarks/bench_word2vec.py                    # the reference solution
    python benchmarks/bench_word2vec.py --impl exercises   # your work
    python benchmarks/bench_word2vec.py --impl graders/mutants/section0/word2vec__loop_over_pairs.py

Times are medians of interleaved repeats (llmkit.timing.compare_fixed) on the same float64
arrays; ratio = implementation time / torch autograd's time (lower is better, 1.0 = as
fast). The speed grader's case is B=4096, V=10000 (limit 3x). The last line times one
train_word2vec call on the graders' planted corpus, with the analogies it then answers.
"""

from __future__ import annotations

import time

import numpy as np

from llmkit.bench import benchmark_parser, header, load_benchmarked
from llmkit.support import load_support
from llmkit.timing import compare_fixed

support = load_support("0.2")

CASES = [  # (B, V, D, K); the fourth is the speed grader's
    (64, 10_000, 100, 5),
    (512, 10_000, 100, 5),
    (4096, 1_000, 100, 5),
    (4096, 10_000, 100, 5),
    (4096, 10_000, 300, 5),
    (16384, 10_000, 100, 15),
]


def main() -> None:
    args = benchmark_parser(__doc__, repeats=7).parse_args()
    impl = load_benchmarked(args, "0.2")
    print(header("word2vec", args, dtype="float64"))
    print(f"{'case':<42} {'impl ms':>9} {'torch ms':>9} {'ratio':>6}")
    for i, (b, v, d, k) in enumerate(CASES):
        inputs = support.speed_inputs(i, B=b, V=v, D=d, K=k)
        r = compare_fixed(
            lambda: impl.sgns_loss_and_grads_batch(*inputs),
            lambda: support.torch_autograd_batch(*inputs),
            repeats=args.repeats,
        )
        case = f"batched gradient B={b} V={v} D={d} K={k}"
        print(f"{case:<42} {r.candidate_s * 1e3:9.3f} {r.baseline_s * 1e3:9.3f} {r.ratio:6.2f}")
    corpus = support.planted_corpus(seed=0)
    start = time.perf_counter()
    W_in, _ = impl.train_word2vec(corpus, len(support.VOCAB), seed=0, **support.TRAINING)
    seconds = time.perf_counter() - start
    right = sum(got == d for (_, _, _, d), got in support.analogy_answers(np.asarray(W_in)))
    tokens = sum(len(s) for s in corpus)
    print(
        f"train_word2vec on the planted corpus ({len(corpus)} sentences, {tokens} tokens, "
        f"{support.TRAINING}): {seconds:.2f} s, {right}/{len(support.planted_analogies())} analogies"
    )


if __name__ == "__main__":
    main()
