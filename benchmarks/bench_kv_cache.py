"""Benchmark exercise 7.3: greedy generation with the KV cache against recomputing, same run.

    python benchmarks/bench_kv_cache.py                    # the reference solution
    python benchmarks/bench_kv_cache.py --impl exercises   # your work
    python benchmarks/bench_kv_cache.py --impl graders/mutants/section7/kv_cache__recompute_every_step.py

Each case generates new tokens after a prompt with the stub's TinyDecoder (built from
the implementation's CachedSelfAttention and KVCache), batch 1, float32, one thread by
default. Times are medians of interleaved repeats (llmkit.timing.compare_fixed) of
whole generate_greedy calls:

* cache / recompute: use_cache=True against use_cache=False of the same implementation
  (the issue's target: the cache at least 3x faster at 256 new tokens, ratio <= 0.33);
* cache / oracle: use_cache=True against the support module's oracle, which recomputes
  the whole sequence with torch's SDPA for every token (the speed grader's baseline,
  at the grader's own case: 32 new tokens after 256, float64).

Lower is better. Every answer is checked against the oracle's once before timing.
"""

from __future__ import annotations

import torch

from llmkit.bench import benchmark_parser, header, load_benchmarked
from llmkit.support import load_support
from llmkit.timing import compare_fixed

support = load_support("7.3")

# (d_model, n_heads, n_layers, d_ff, prompt, new tokens, dtype)
CASES = [
    (64, 4, 2, 128, 16, 256, torch.float32),
    (128, 4, 2, 256, 16, 256, torch.float32),
    (256, 8, 2, 1024, 16, 256, torch.float32),
    (128, 4, 2, 256, 256, 32, torch.float64),  # the speed grader's case
]
VOCAB = 64


def main() -> None:
    args = benchmark_parser(__doc__, repeats=3, threads=1).parse_args()
    impl = load_benchmarked(args, "7.3")
    print(header("kv_cache", args, batch=1))
    print(f"{'case':<52} {'cache ms':>9} {'recompute ms':>13} {'ratio':>6} {'oracle ms':>10} {'ratio':>6}")
    for d_model, n_heads, n_layers, d_ff, prompt_len, new, dtype in CASES:
        weights = support.decoder_weights(VOCAB, d_model, n_layers, d_ff, seed=0, dtype=dtype)
        prompt = torch.randint(0, VOCAB, (1, prompt_len), generator=torch.Generator().manual_seed(0))
        got = impl.generate_from_weights(weights, n_heads, prompt, new)
        want = support.greedy(weights, n_heads, prompt, new)
        same = "" if torch.equal(torch.as_tensor(got), want) else "  (tokens differ from the oracle's!)"
        own = compare_fixed(
            lambda: impl.generate_from_weights(weights, n_heads, prompt, new, True),
            lambda: impl.generate_from_weights(weights, n_heads, prompt, new, False),
            repeats=args.repeats,
            number=1,
        )
        oracle = compare_fixed(
            lambda: impl.generate_from_weights(weights, n_heads, prompt, new, True),
            lambda: support.greedy(weights, n_heads, prompt, new),
            repeats=args.repeats,
            number=1,
        )
        case = (
            f"d={d_model} H={n_heads} L={n_layers} prompt={prompt_len} new={new} "
            f"{str(dtype).removeprefix('torch.')}"
        )
        print(
            f"{case:<52} {own.candidate_s * 1e3:9.1f} {own.baseline_s * 1e3:13.1f} {own.ratio:6.3f} "
            f"{oracle.baseline_s * 1e3:10.1f} {oracle.ratio:6.3f}{same}"
        )


if __name__ == "__main__":
    main()
