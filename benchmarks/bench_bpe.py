"""Benchmark exercise 2.1: BPE training and encoding against Rust libraries, same run.

    python benchmarks/bench_bpe.py                    # the reference solution
    python benchmarks/bench_bpe.py --impl exercises   # your work

Corpora: ../shared/data/tinyshakespeare.txt when it exists (read at run time,
never part of the kit; skipped with a note when absent) and the kit's own
seeded English-like text (synthetic_corpus of exercises/support/section2/bpe.py, 1.1 MB).

* train: impl.train_bpe(text, vocab_size) vs Hugging Face ``tokenizers``'
  BpeTrainer with a byte-level pre-tokenizer (skipped when the package is not
  installed: ``pip install tokenizers``). ratio = impl time / HF time.
* encode: impl.Tokenizer(...).encode(text) vs tiktoken's encode_ordinary (one
  thread) with the ranks the impl trained, and with GPT-2's ranks when cached.
  "warm" encodes a second time with the same Tokenizer (its pre-token cache
  filled); "cold" is a fresh Tokenizer's first call. ratio = throughput of impl /
  throughput of tiktoken (higher is better).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from llmkit.bench import benchmark_parser, load_benchmarked
from llmkit.support import load_support
from llmkit.timing import compare_fixed

support = load_support("2.1")

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
SPECIAL = "<|endoftext|>"


def hf_train(text: str, vocab_size: int):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([text], trainer)
    return tok


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = benchmark_parser(__doc__, repeats=3, threads=0)
    parser.add_argument("--vocab-size", type=int, default=5000)
    args = parser.parse_args()
    impl = load_benchmarked(args, "2.1")
    try:
        import tokenizers

        threads = os.environ.get("RAYON_NUM_THREADS", "default")
        hf = f"tokenizers {tokenizers.__version__} (RAYON_NUM_THREADS={threads})"
    except ImportError:
        hf = None
    import tiktoken

    print(
        f"# BPE benchmark: impl={args.impl}, vocab_size={args.vocab_size}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, tiktoken {tiktoken.__version__}, {hf or 'tokenizers not installed'}"
    )
    corpora = [("synthetic 1.1 MB (seed 0)", support.synthetic_corpus(1_100_000, seed=0))]
    if SHAKESPEARE.is_file():
        corpora.insert(0, ("tinyshakespeare.txt", SHAKESPEARE.read_text(encoding="utf-8")))
    else:
        print(f"# {SHAKESPEARE} not found: benchmarking on the synthetic corpus only")

    print(f"{'corpus':<28} {'what':<34} {'impl':>9} {'baseline':>9} {'ratio':>6}")
    for name, text in corpora:
        mb = len(text.encode("utf-8")) / 1e6
        vocab, merges = impl.train_bpe(text, args.vocab_size, [SPECIAL])
        if hf:
            r = compare_fixed(
                lambda: impl.train_bpe(text, args.vocab_size, [SPECIAL]),
                lambda: hf_train(text, args.vocab_size),
                repeats=args.repeats,
                number=1,
                warmup=0,
            )
            row = "train s (vs HF BpeTrainer)"
            print(f"{name:<28} {row:<34} {r.candidate_s:9.3f} {r.baseline_s:9.3f} {r.ratio:6.2f}")
        else:
            t = min(
                timed(lambda: impl.train_bpe(text, args.vocab_size, [SPECIAL])) for _ in range(args.repeats)
            )
            print(f"{name:<28} {'train s (HF not installed)':<34} {t:9.3f} {'-':>9} {'-':>6}")

        rank_sets = [("own ranks", vocab, merges, support.tiktoken_encoding(vocab, [SPECIAL]))]
        gpt2 = support.gpt2_vocab_and_merges()
        if gpt2 is not None:
            rank_sets.append(("GPT-2 ranks", *gpt2, support.gpt2_encoding()))
        for label, v, m, enc in rank_sets:
            tok = impl.Tokenizer(v, m, [SPECIAL])
            cold = timed(lambda: tok.encode(text))
            if tok.encode(text) != enc.encode_ordinary(text):
                print(f"{name:<28} encode with {label}: DIFFERS FROM TIKTOKEN")
                continue
            base = min(timed(lambda: enc.encode_ordinary(text)) for _ in range(args.repeats))
            r = compare_fixed(
                lambda: tok.encode(text), lambda: enc.encode_ordinary(text), repeats=args.repeats, number=1
            )
            for what, t, b in (("cold", cold, base), ("warm", r.candidate_s, r.baseline_s)):
                row = f"encode MB/s, {label}, {what}"
                print(f"{name:<28} {row:<34} {mb / t:9.1f} {mb / b:9.1f} {b / t:6.2f}")


if __name__ == "__main__":
    main()
