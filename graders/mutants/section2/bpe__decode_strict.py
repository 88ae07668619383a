"""Mutant: decode joins the tokens' bytes and decodes them as strict UTF-8.

Misconception: every list of ids decodes to text. A model can emit any ids, for
example the first byte of a character and then something else; strict decoding
raises UnicodeDecodeError where the tokenizer must return U+FFFD ("\\ufffd").
"""


class Tokenizer(Tokenizer):
    def decode(self, ids):
        return b"".join(self.vocab[i] for i in ids).decode("utf-8")
