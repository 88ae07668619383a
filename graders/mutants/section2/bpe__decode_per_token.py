"""Mutant: decode turns each token into text on its own, then joins the strings.

Misconception: a token is always a whole character. Byte-level tokens can
hold part of a UTF-8 character ("日" is three bytes, possibly three tokens);
decoding them one by one turns each piece into U+FFFD.
"""


class Tokenizer(Tokenizer):
    def decode(self, ids):
        return "".join(self.vocab[i].decode("utf-8", errors="replace") for i in ids)
