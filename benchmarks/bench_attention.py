"""Benchmark exercise 2.3: an implementation's attention against torch, same run.

    python benchmarks/bench_attention.py                    # the reference solution
    python benchmarks/bench_attention.py --impl exercises   # your work
    python benchmarks/bench_attention.py --impl graders/mutants/section2/attention__loop_over_rows.py

Times are medians of interleaved repeats (llmkit.timing.compare_fixed);
ratio = implementation time / torch time (lower is better, 1.0 = as fast).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llmkit.bench import benchmark_parser, header, load_benchmarked
from llmkit.support import load_support
from llmkit.timing import compare_fixed

support = load_support("2.3")

SDPA_SHAPES = [  # (B, H, L, d); the first two are the speed grader's (many short rows, one long sequence)
    (32, 4, 64, 16),
    (1, 2, 512, 16),
    (1, 8, 128, 64),
    (4, 8, 256, 64),
    (2, 16, 512, 64),
    (1, 8, 1024, 128),
]
MHA_SHAPES = [(8, 128, 256, 8), (4, 512, 512, 8)]  # (B, L, d_model, heads)


def main() -> None:
    args = benchmark_parser(__doc__, repeats=7).parse_args()
    impl = load_benchmarked(args, "2.3")
    print(header("attention", args, dtype="float32"))
    print(f"{'case':<42} {'impl ms':>9} {'torch ms':>9} {'ratio':>6}")
    gen = torch.Generator().manual_seed(0)
    for b, h, length, d in SDPA_SHAPES:
        q, k, v = (torch.randn(b, h, length, d, generator=gen) for _ in range(3))
        for causal in (False, True):
            r = compare_fixed(
                lambda: impl.scaled_dot_product_attention(q, k, v, is_causal=causal),
                lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                repeats=args.repeats,
            )
            case = f"sdpa B={b} H={h} L={length} d={d}{' causal' if causal else ''}"
            print(f"{case:<42} {r.candidate_s * 1e3:9.3f} {r.baseline_s * 1e3:9.3f} {r.ratio:6.2f}")
    for b, length, d_model, heads in MHA_SHAPES:
        reference = support.torch_mha(d_model, heads, True, torch.float32, seed=0)
        mha = impl.MultiHeadAttention(d_model, heads)
        mha.load_state_dict(support.state_dict_for_learner(reference))
        x = torch.randn(b, length, d_model, generator=gen)
        with torch.no_grad():
            r = compare_fixed(
                lambda: mha(x), lambda: reference(x, x, x, need_weights=False), repeats=args.repeats
            )
        case = f"mha B={b} L={length} d_model={d_model} heads={heads}"
        print(f"{case:<42} {r.candidate_s * 1e3:9.3f} {r.baseline_s * 1e3:9.3f} {r.ratio:6.2f}")


if __name__ == "__main__":
    main()
