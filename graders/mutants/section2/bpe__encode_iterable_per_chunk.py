"""Mutant: encode_iterable encodes each chunk on its own.

Misconception: chunks (lines of a file) are independent. A chunk can end
inside a word or a special token, and pre-tokens such as "\\n\\n" or " 're"
span line ends, so the ids differ from encoding the joined text.
"""


class Tokenizer(Tokenizer):
    def encode_iterable(self, iterable):
        for chunk in iterable:
            yield from self.encode(chunk)
