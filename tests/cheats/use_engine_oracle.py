# target: section2/bpe.py
"""Uses the grading engine's own BPE oracle (a complete trainer and encoder) as its
implementation."""

import importlib
import pathlib

oracle = importlib.import_module("llmkit.oracles.bpe")
if not hasattr(oracle, "train_bpe"):  # or read the oracle's source and run it
    source = pathlib.Path(importlib.util.find_spec("llmkit").origin).parent / "oracles" / "bpe.py"
    exec(compile(source.read_text(), str(source), "exec"), vars(oracle))

train_bpe = oracle.train_bpe


class Tokenizer:
    def __init__(self, vocab, merges, special_tokens=None):
        self.vocab, self.merges = vocab, merges
        self.ids = {b: i for i, b in vocab.items()}

    def encode(self, text):
        return oracle.encode_with_merges(text, self.merges, self.ids)

    def encode_iterable(self, iterable):
        for chunk in iterable:
            yield from self.encode(chunk)

    def decode(self, ids):
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")
