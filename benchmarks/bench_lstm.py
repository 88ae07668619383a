"""Benchmark exercise 1.3: an implementation's LSTM cell and lstm() against torch, same run.

    python benchmarks/bench_lstm.py                    # the reference solution
    python benchmarks/bench_lstm.py --impl exercises   # your work

CPU, float32, forward only (no_grad) and forward + backward. Times are medians of
interleaved repeats (llmkit.timing.compare_fixed); ratio = implementation time /
torch time (lower is better, 1.0 = as fast). Target: the reference cell within 2x
of nn.LSTMCell at B=64, H=256.
"""

from __future__ import annotations

import torch

from llmkit.bench import benchmark_parser, header, load_benchmarked
from llmkit.support import load_support
from llmkit.timing import compare_fixed

support = load_support("1.3")

CELL_SIZES = [(64, 256, 256), (16, 128, 128), (256, 512, 512)]  # (B, I, H)
SEQ_SIZES = [(32, 64, 256, 256)]  # (T, B, I, H)


def fwd_bwd(module, *args):
    def run():
        out = module(*args)
        out = out[0] if isinstance(out, tuple) else out
        out.sum().backward()

    return run


def main() -> None:
    args = benchmark_parser(__doc__, repeats=9).parse_args()
    impl = load_benchmarked(args, "1.3")
    print(header("lstm", args, dtype="float32"))
    print(f"{'case':<44} {'impl ms':>9} {'torch ms':>9} {'ratio':>6}")

    def report(case, r):
        print(f"{case:<44} {r.candidate_s * 1e3:9.3f} {r.baseline_s * 1e3:9.3f} {r.ratio:6.2f}")

    gen = torch.Generator().manual_seed(0)
    for b, i, h in CELL_SIZES:
        reference = support.torch_cell(i, h, True, torch.float32, seed=0)
        cell = impl.LSTMCell(i, h)
        cell.load_state_dict(support.learner_state_dict(reference))
        x, h0, c0 = (
            torch.randn(b, i, generator=gen),
            torch.randn(b, h, generator=gen),
            torch.randn(b, h, generator=gen),
        )
        with torch.no_grad():
            r = compare_fixed(lambda: cell(x, (h0, c0)), lambda: reference(x, (h0, c0)), repeats=args.repeats)
        report(f"cell forward B={b} I={i} H={h}", r)
        r = compare_fixed(fwd_bwd(cell, x, (h0, c0)), fwd_bwd(reference, x, (h0, c0)), repeats=args.repeats)
        report(f"cell forward+backward B={b} I={i} H={h}", r)
    for t, b, i, h in SEQ_SIZES:
        reference = support.torch_cell(i, h, True, torch.float32, seed=0)
        cell = impl.LSTMCell(i, h)
        cell.load_state_dict(support.learner_state_dict(reference))
        layer = support.torch_lstm(reference)
        x = torch.randn(t, b, i, generator=gen)
        with torch.no_grad():
            r = compare_fixed(lambda: impl.lstm(x, cell), lambda: layer(x), repeats=args.repeats)
        report(f"lstm vs nn.LSTM T={t} B={b} I={i} H={h}", r)


if __name__ == "__main__":
    main()
