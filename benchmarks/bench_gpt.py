"""Benchmark exercise 2.4: an implementation's Block against one assembled from torch
modules (nn.RMSNorm, nn.MultiheadAttention, nn.Linear), same weights, same run; and the
training target (train on the order-2 Markov source) over several seeds.

    python benchmarks/bench_gpt.py                    # the reference solution
    python benchmarks/bench_gpt.py --impl exercises   # your work
    python benchmarks/bench_gpt.py --impl graders/mutants/section2/gpt__mask_built_in_python_loops.py
    python benchmarks/bench_gpt.py --seeds 20         # the training target on 20 seeds in a row

Times are medians of interleaved repeats (llmkit.timing.compare_fixed); ratio =
implementation time / torch time (lower is better, 1.0 = as fast). Both blocks use
torch's attention kernels (the implementation's FallbackAttention, nn.MultiheadAttention).
"""

from __future__ import annotations

import time

import torch

from llmkit.bench import benchmark_parser, header, load_benchmarked
from llmkit.support import load_support
from llmkit.timing import compare_fixed

support = load_support("2.4")

SHAPES = [  # (B, T, d, heads, hidden); the first is the speed grader's
    (8, 64, 64, 4, 256),
    (16, 128, 128, 4, 512),
    (4, 256, 256, 8, 1024),
]


def main() -> None:
    parser = benchmark_parser(__doc__, repeats=7)
    parser.add_argument("--seeds", type=int, default=3, help="training-target seeds to run (0 to skip)")
    args = parser.parse_args()
    impl = load_benchmarked(args, "2.4")
    print(header("gpt", args, dtype="float32"))
    print(f"{'case':<44} {'impl ms':>9} {'torch ms':>9} {'ratio':>6}")
    gen = torch.Generator().manual_seed(0)
    for b, t, d, heads, hidden in SHAPES:
        c = dict(d=d, n_heads=heads, hidden=hidden, dtype=torch.float32, seed=1)
        block, state = support.learner_block(impl, c)
        reference = support.torch_block(state, d, heads, hidden)
        x = torch.randn(b, t, d, generator=gen, requires_grad=True)
        g = torch.randn(b, t, d, generator=gen)

        def fwd_bwd(module):
            return lambda: torch.autograd.grad((module(x) * g).sum(), [x, *module.parameters()])

        for label, mine, theirs in [
            ("forward", lambda: block(x), lambda: reference(x)),
            ("forward+backward", fwd_bwd(block), fwd_bwd(reference)),
        ]:
            r = compare_fixed(mine, theirs, repeats=args.repeats)
            case = f"Block {label} B={b} T={t} d={d} H={heads}"
            print(f"{case:<44} {r.candidate_s * 1e3:9.3f} {r.baseline_s * 1e3:9.3f} {r.ratio:6.2f}")
    if args.seeds:
        cfg = support.TRAINING
        print(f"\ntraining target: {cfg.steps} steps, vocabulary {cfg.vocab}, target H + {cfg.margin} nats")
        print(f"{'seed':>4} {'H':>7} {'val loss':>9} {'gap':>7} {'cpu s':>6} {'wall s':>7}")
        for seed in range(args.seeds):
            began = time.perf_counter()
            _, val, entropy_rate, cpu = support.train_on_markov(impl, seed, cfg)
            wall = time.perf_counter() - began
            mark = "" if val <= entropy_rate + cfg.margin else "  FAIL"
            gap = val - entropy_rate
            print(f"{seed:>4} {entropy_rate:7.4f} {val:9.4f} {gap:+7.4f} {cpu:6.2f} {wall:7.2f}{mark}")


if __name__ == "__main__":
    main()
