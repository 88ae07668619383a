"""Benchmark exercise 7.1: tiled attention against torch's SDPA and a naive materialising
attention, time and peak memory, same run.

    python benchmarks/bench_flash_attention.py                    # the reference solution
    python benchmarks/bench_flash_attention.py --impl exercises   # your work

Times are medians of interleaved repeats (llmkit.timing.compare_fixed); ratio =
time / torch SDPA time (lower is better). Peak memory is llmkit.memory's count of
the bytes held at once in tensors each call creates (outputs included). It sees
every aten op's results, not scratch space *inside* one kernel: torch's fused SDPA
kernel shows only its outputs, so its figure is a lower bound.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llmkit.bench import benchmark_parser, header, load_benchmarked
from llmkit.memory import format_bytes, measure_memory
from llmkit.support import load_support
from llmkit.timing import compare_fixed

naive_attention = load_support("7.1").naive_attention

SHAPES = [  # (B, H, N, D)
    (1, 8, 512, 64),
    (1, 4, 1024, 64),
    (1, 1, 2048, 64),
    (1, 1, 4096, 64),
]


def main() -> None:
    # One thread by default: on a shared 2-core machine, idle OpenMP workers made the many
    # tile-sized ops of the Python loop 10-500x slower from one repeat to the next.
    parser = benchmark_parser(__doc__, repeats=5, threads=1)
    parser.add_argument("--block", type=int, default=64, help="block_q = block_k")
    args = parser.parse_args()
    impl = load_benchmarked(args, "7.1")
    flash = impl.flash_attention_torch
    print(header("flash attention", args, dtype="float32", block=args.block))
    print(
        f"{'case':<30} {'tiled ms':>9} {'naive ms':>9} {'sdpa ms':>9} {'tiled/sdpa':>10} {'naive/sdpa':>10}"
        f" {'tiled peak':>11} {'naive peak':>11} {'sdpa peak':>10} {'naive/tiled mem':>15}"
    )
    gen = torch.Generator().manual_seed(0)
    for b, h, n, d in SHAPES:
        q, k, v = (torch.randn(b, h, n, d, generator=gen) for _ in range(3))
        for causal in (False, True):
            kw = {"causal": causal, "block_q": args.block, "block_k": args.block}
            with torch.no_grad():
                tiled = compare_fixed(
                    lambda: flash(q, k, v, **kw),
                    lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                    repeats=args.repeats,
                )
                naive = compare_fixed(
                    lambda: naive_attention(q, k, v, causal),
                    lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                    repeats=args.repeats,
                )
            mem_tiled = measure_memory(flash, [q, k, v], kwargs=kw).peak_bytes
            mem_naive = measure_memory(naive_attention, [q, k, v, causal]).peak_bytes
            mem_sdpa = measure_memory(
                F.scaled_dot_product_attention, [q, k, v], kwargs={"is_causal": causal}
            ).peak_bytes
            sdpa_ms = (tiled.baseline_s + naive.baseline_s) / 2 * 1e3
            case = f"B={b} H={h} N={n} D={d}{' causal' if causal else ''}"
            print(
                f"{case:<30} {tiled.candidate_s * 1e3:9.2f} {naive.candidate_s * 1e3:9.2f} {sdpa_ms:9.2f} "
                f"{tiled.ratio:10.2f} {naive.ratio:10.2f} {format_bytes(mem_tiled):>11} "
                f"{format_bytes(mem_naive):>11} {format_bytes(mem_sdpa):>10} {mem_naive / mem_tiled:15.1f}"
            )


if __name__ == "__main__":
    main()
