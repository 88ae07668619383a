"""Benchmark exercise 3.3: an implementation's BM25 against bm25s and rank_bm25, same run.

    python benchmarks/bench_retrieval.py                    # the reference solution
    python benchmarks/bench_retrieval.py --impl exercises   # your work
    python benchmarks/bench_retrieval.py --impl graders/mutants/section3/retrieval__loop_over_documents.py

The issue's target: BM25 scoring of 10,000 documents within 2x bm25s (the fast anchor,
which precomputes every score into a sparse matrix) and faster than rank_bm25 (which
walks every document for every query word). The corpus is the kit's own
(support.make_corpus: documents of 15-40 tokens over topic and common words, seeded),
so nothing is read from disk.

* scores: impl.BM25(docs).scores(query) for queries of 5 and 10 content words (each in
  fewer than half of the documents, where bm25s' "robertson" idf and rank_bm25's agree;
  bm25s runs with rank_bm25's term-frequency part, "atire", in float64), cycling through
  50 queries, against bm25s' get_scores and rank_bm25's get_scores. The answers are
  checked equal first.
* index: building the index once (impl.BM25(docs) vs bm25s' index and BM25Okapi), for
  scale: no target applies.

Times are medians of interleaved repeats (llmkit.timing.compare_fixed), in-process; the
grader's sandboxed timing adds each call's trip to the worker to both sides.
ratio = implementation time / library time (lower is better, 1.0 = as fast).
"""

from __future__ import annotations

import itertools

import bm25s
import numpy as np
import rank_bm25

from llmkit.bench import benchmark_parser, header, load_benchmarked
from llmkit.support import load_support
from llmkit.timing import compare_fixed

support = load_support("3.3")


def fast_index(docs):
    index = bm25s.BM25(k1=1.5, b=0.75, method="atire", idf_method="robertson", dtype="float64")
    index.index(docs, show_progress=False)
    return index


def main() -> None:
    parser = benchmark_parser(__doc__, repeats=7, threads=0)
    parser.add_argument("--docs", type=int, nargs="+", default=[1_000, 10_000, 30_000])
    args = parser.parse_args()
    impl = load_benchmarked(args, "3.3")
    print(header("retrieval (BM25)", args))
    print(f"{'case':<40} {'impl ms':>9} {'bm25s ms':>9} {'ratio':>6} {'rank_bm25 ms':>13} {'ratio':>7}")
    rng = np.random.default_rng(0)
    for n_docs in args.docs:
        corpus = support.make_corpus(n_docs, n_queries=0, seed=11)
        docs = corpus.docs
        content = [w for words in corpus.topic_words for w in words]
        mine, fast, okapi = impl.BM25(docs), fast_index(docs), rank_bm25.BM25Okapi(docs)
        for words in (5, 10):
            queries = [
                [content[j] for j in rng.choice(len(content), size=words, replace=False)] for _ in range(50)
            ]
            for query in queries[:3]:
                want = okapi.get_scores(query)
                assert np.allclose(np.asarray(mine.scores(query)), want, rtol=1e-10, atol=1e-10), (
                    "impl != rank_bm25"
                )
                assert np.allclose(fast.get_scores(query), want, rtol=1e-10, atol=1e-10), "bm25s != rank_bm25"
            mine_q, fast_q, okapi_q = (itertools.cycle(queries) for _ in range(3))
            vs_fast = compare_fixed(
                lambda: mine.scores(next(mine_q)), lambda: fast.get_scores(next(fast_q)), repeats=args.repeats
            )
            vs_okapi = compare_fixed(
                lambda: mine.scores(next(mine_q)),
                lambda: okapi.get_scores(next(okapi_q)),
                repeats=max(3, args.repeats // 2),
            )
            case = f"scores N={n_docs} query={words} words"
            print(
                f"{case:<40} {vs_fast.candidate_s * 1e3:9.3f} {vs_fast.baseline_s * 1e3:9.3f} "
                f"{vs_fast.ratio:6.2f} {vs_okapi.baseline_s * 1e3:13.3f} {vs_okapi.ratio:7.3f}"
            )
        build_fast = compare_fixed(lambda: impl.BM25(docs), lambda: fast_index(docs), repeats=3, number=1)
        build_okapi = compare_fixed(
            lambda: impl.BM25(docs), lambda: rank_bm25.BM25Okapi(docs), repeats=3, number=1
        )
        case = f"index N={n_docs}"
        print(
            f"{case:<40} {build_fast.candidate_s * 1e3:9.1f} {build_fast.baseline_s * 1e3:9.1f} "
            f"{build_fast.ratio:6.2f} {build_okapi.baseline_s * 1e3:13.1f} {build_okapi.ratio:7.3f}"
        )


if __name__ == "__main__":
    main()
