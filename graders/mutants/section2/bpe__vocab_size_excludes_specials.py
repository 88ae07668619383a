"""Mutant: training fills vocab_size with bytes and merges, then adds the special tokens on top.

Misconception: vocab_size counts the learned tokens only. It is the size of the
whole vocabulary, special tokens included: with one special token there is room
for one merge fewer, and the vocabulary must never exceed vocab_size.
"""

_train_without_specials_in_the_count = train_bpe


def train_bpe(text, vocab_size, special_tokens=()):
    special_tokens = list(dict.fromkeys(special_tokens))
    if vocab_size < 256 + len(special_tokens):
        raise ValueError("vocab_size too small")
    return _train_without_specials_in_the_count(text, vocab_size + len(special_tokens), special_tokens)
