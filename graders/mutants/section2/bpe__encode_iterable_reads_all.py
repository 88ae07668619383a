"""Mutant: encode_iterable joins the whole input, then encodes it.

Misconception: a generator that yields at the end is lazy. The ids are right,
but the whole input and all its ids sit in memory at once.
"""


class Tokenizer(Tokenizer):
    def encode_iterable(self, iterable):
        yield from self.encode("".join(iterable))
