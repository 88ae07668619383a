"""Overhead of the runtime ban trap: the reference solutions timed with and without it.

    python benchmarks/bench_bans.py                 # the reference solutions
    python benchmarks/bench_bans.py --threads 1     # as in a sandbox worker

The trap (llmkit.bans.trap_banned_calls) replaces the banned attributes with guards
and puts an interceptor in front of the kernels of the banned aten operators at
torch's dispatcher; other operators run untouched, so allowed code should not slow.
"held" keeps one trap around all calls, as the in-process pytest plugin does for a
test's body; "per call" sets a fresh trap for every call, as the sandbox worker
does for each request. Ratio = median time with the trap / median time without it,
over interleaved repeats (process CPU time); 1.00 = no overhead.
"""

from __future__ import annotations

import statistics
import time

import torch

from llmkit.bans import trap_banned_calls
from llmkit.bench import benchmark_parser, header
from llmkit.catalog import load_catalog
from llmkit.impl import module_files, resolve_root


def cases(catalog, root):
    """(exercise id, case name, module, the call) at the sizes the hidden graders time."""
    g = torch.Generator().manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    attention = root.load(catalog.get("2.3"))
    q, k, v = (randn(32, 4, 64, 16) for _ in range(3))  # graders/section2 SPEED_SHAPE
    yield "2.3", "sdpa (32, 4, 64, 16)", attention, lambda: attention.scaled_dot_product_attention(q, k, v)
    yield (
        "2.3",
        "sdpa causal",
        attention,
        lambda: attention.scaled_dot_product_attention(q, k, v, is_causal=True),
    )
    small = [randn(2, 4, 8, 8) for _ in range(3)]
    yield "2.3", "sdpa (2, 4, 8, 8)", attention, lambda: attention.scaled_dot_product_attention(*small)
    mha = attention.MultiHeadAttention(64, 4)
    x = randn(8, 32, 64)
    yield "2.3", "mha (8, 32, 64) heads=4", attention, lambda: mha(x)

    lstm = root.load(catalog.get("1.3"))
    cell = lstm.LSTMCell(128, 128)
    xs, h, c = randn(64, 128), randn(64, 128), randn(64, 128)  # graders/section1 SPEED_SIZES
    yield "1.3", "cell B=64 I=H=128", lstm, lambda: cell(xs, (h, c))

    flash = root.load(catalog.get("7.1"))
    fq, fk, fv = (randn(1, 4, 256, 32) for _ in range(3))
    yield (
        "7.1",
        "flash (1, 4, 256, 32) blocks 64",
        flash,
        lambda: flash.flash_attention_torch(fq, fk, fv, block_q=64, block_k=64),
    )


def measure(call, banned, files, exercise_id: str, repeats: int) -> tuple[float, float, float]:
    """(plain seconds per call, held ratio, per-call ratio): medians of interleaved repeats."""

    def per_call():
        with trap_banned_calls(banned, files, exercise_id, block_is_learner_code=True):
            return call()

    def timed(fn, trap: bool) -> float:
        start = time.process_time()
        if trap:
            with trap_banned_calls(banned, files, exercise_id):
                for _ in range(number):
                    fn()
        else:
            for _ in range(number):
                fn()
        return (time.process_time() - start) / number

    per_call()  # warm up (and set up the interceptors)
    start = time.process_time()
    call()
    number = max(1, int(0.05 / max(time.process_time() - start, 1e-6)))
    sides = {"plain": (call, False), "held": (call, True), "per call": (per_call, False)}
    times: dict[str, list[float]] = {side: [] for side in sides}
    for i in range(repeats):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for side in order:
            times[side].append(timed(*sides[side]))
    plain = statistics.median(times["plain"])
    return plain, statistics.median(times["held"]) / plain, statistics.median(times["per call"]) / plain


def main() -> None:
    args = benchmark_parser(__doc__, repeats=15).parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    catalog = load_catalog()
    root = resolve_root(args.impl, catalog.root)
    print(header("ban trap overhead", args))
    print(f"{'exercise':<8} {'case':<34} {'plain ms':>9} {'held':>6} {'per call':>9}")
    with torch.no_grad():
        for exercise_id, name, module, call in cases(catalog, root):
            ex = catalog.get(exercise_id)
            plain, held, each = measure(call, ex.banned, module_files(module), ex.id, args.repeats)
            print(f"{ex.id:<8} {name:<34} {plain * 1e3:9.3f} {held:6.2f} {each:9.2f}")


if __name__ == "__main__":
    main()
