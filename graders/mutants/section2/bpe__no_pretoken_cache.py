"""Mutant: encode runs BPE on every pre-token occurrence, with no cache.

Misconception: caching is an optional extra. Natural text repeats the same
few thousand pre-tokens over and over; without a cache every " the" is merged
from single bytes again.
"""


class Tokenizer(Tokenizer):
    def _bpe(self, pretoken):
        self.cache.clear()
        return super()._bpe(pretoken)
