"""Benchmark exercise 7.2 on a GPU: the Triton kernel against torch's SDPA backends.

    python benchmarks/bench_triton_attention.py                    # the reference solution
    python benchmarks/bench_triton_attention.py --impl exercises   # your kernel

The issue's cases: float16, B * N = 16384 tokens, hidden size 2048 (H = 2048 / D),
N in {1024, 4096, 16384}, D in {64, 128}, causal and not. Each case times the
kernel under test, F.scaled_dot_product_attention with the cuDNN and the
FlashAttention backends pinned, and a naive PyTorch attention that materialises the
N x N scores, with triton.testing.do_bench medians in one run, and prints TFLOP/s
(4 B H N^2 D, halved when causal). The target: the kernel's geometric-mean TFLOP/s
at least equal to the cuDNN backend's.

Needs a CUDA GPU: without one it says so and exits (status 0). The Triton
interpreter (TRITON_INTERPRET=1) is far too slow for these sizes; use the tests.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import sys
from datetime import date

import torch

if not torch.cuda.is_available():
    print("bench_triton_attention: no CUDA GPU here (torch.cuda.is_available() is False); nothing to time.")
    print("Check the kernel on the CPU instead: pytest exercises/section7 (Triton's interpreter).")
    sys.exit(0)
os.environ.pop("TRITON_INTERPRET", None)  # the real compiler: set before triton is imported

import torch.nn.functional as F  # noqa: E402
import triton  # noqa: E402
import triton.testing  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402

from llmkit.bench import benchmark_parser, load_benchmarked
from llmkit.support import load_support  # noqa: E402

naive_attention = load_support("7.1").naive_attention
attention_flops = load_support("7.2").attention_flops

TOKENS, HIDDEN = 16384, 2048
SEQ_LENS = (1024, 4096, 16384)
HEAD_DIMS = (64, 128)
METHODS = ("kernel", "cudnn", "flash", "naive")


def cases(quick: bool):
    for d in HEAD_DIMS:
        for n in SEQ_LENS[:2] if quick else SEQ_LENS:
            for causal in (False, True):
                yield TOKENS // n, HIDDEN // d, n, d, causal


def time_ms(fn) -> float | None:
    """Median ms of do_bench, or None when the method cannot run (backend missing, OOM)."""
    try:
        fn()  # compile, tune, pick kernels outside the timing
        torch.cuda.synchronize()
        return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
        print(f"    ({str(exc).splitlines()[0][:100]})")
        torch.cuda.empty_cache()
        return None


def sdpa(q, k, v, causal):
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def bench_case(kernel, b, h, n, d, causal, naive):
    """TFLOP/s of each method (None where it could not run) and the kernel's max |error|
    against the flash backend."""
    gen = torch.Generator(device="cuda").manual_seed(n * d + causal)
    q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.float16, generator=gen) for _ in range(3))
    with torch.no_grad():
        out, _ = kernel(q, k, v, causal=causal)
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            err = (out.float() - sdpa(q, k, v, causal).float()).abs().max().item()
        runs = {  # name: (function, SDPA backend pinned while it is timed)
            "kernel": (lambda: kernel(q, k, v, causal=causal), None),
            "cudnn": (lambda: sdpa(q, k, v, causal), SDPBackend.CUDNN_ATTENTION),
            "flash": (lambda: sdpa(q, k, v, causal), SDPBackend.FLASH_ATTENTION),
            "naive": (lambda: naive_attention(q, k, v, causal), None),
        }
        if not naive:
            del runs["naive"]
        flops = attention_flops(b, h, n, d, causal)
        row = dict.fromkeys(METHODS)
        for name, (fn, backend) in runs.items():
            with sdpa_kernel(backend) if backend else contextlib.nullcontext():
                ms = time_ms(fn)
            row[name] = flops / ms * 1e-9 if ms else None
    return row, err


def fmt(x, width=7, spec=".0f"):
    return f"{x:>{width}{spec}}" if x else f"{'n/a':>{width}}"


def geomean(values) -> float:
    values = [v for v in values if v]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else float("nan")


def main() -> None:
    parser = benchmark_parser(__doc__, repeats=1, threads=0)  # do_bench takes its own medians
    parser.add_argument("--quick", action="store_true", help="N in {1024, 4096} only")
    parser.add_argument(
        "--no-naive", action="store_true", help="skip the naive attention (tens of GB at N=16384)"
    )
    args = parser.parse_args()

    kernel = load_benchmarked(args, "7.2").triton_attention
    print(
        f"# triton attention benchmark, {date.today()}: impl={args.impl}, {torch.cuda.get_device_name()}, "
        f"torch {torch.__version__}, triton {triton.__version__}, {platform.machine()}, float16, "
        "do_bench medians, TFLOP/s = 4 B H N^2 D / time (halved when causal)"
    )
    print(
        f"{'B':>3} {'H':>3} {'N':>6} {'D':>4} {'causal':>6} | "
        + " ".join(f"{m:>7}" for m in METHODS)
        + f" | {'kernel/cudnn':>12} {'kernel/flash':>12} {'max|err|':>9}"
    )
    tflops = {m: [] for m in METHODS}
    for b, h, n, d, causal in cases(args.quick):
        row, err = bench_case(kernel, b, h, n, d, causal, naive=not args.no_naive)
        torch.cuda.empty_cache()
        for m in METHODS:
            tflops[m].append(row[m])
        vs = [row["kernel"] / row[m] if row["kernel"] and row[m] else None for m in ("cudnn", "flash")]
        print(
            f"{b:>3} {h:>3} {n:>6} {d:>4} {str(causal):>6} | "
            + " ".join(fmt(row[m]) for m in METHODS)
            + f" | {fmt(vs[0], 12, '.2f')} {fmt(vs[1], 12, '.2f')} {err:>9.2e}"
        )
    means = {m: geomean(v) for m, v in tflops.items()}
    print("geometric mean TFLOP/s: " + ", ".join(f"{m} {means[m]:.0f}" for m in METHODS))
    for baseline in ("cudnn", "flash"):
        print(
            f"kernel / {baseline}: {means['kernel'] / means[baseline]:.2f}x the TFLOP/s "
            f"(= {means[baseline] / means['kernel']:.2f}x the time)"
        )
    if math.isnan(means["cudnn"]) or math.isnan(means["kernel"]):
        verdict = "cannot be judged (a method did not run)"
    else:
        verdict = "met" if means["kernel"] >= means["cudnn"] else "NOT met"
    print(f"target (geometric-mean TFLOP/s >= cuDNN backend's): {verdict}")


if __name__ == "__main__":
    main()
