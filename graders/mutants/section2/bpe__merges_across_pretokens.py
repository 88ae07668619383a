"""Mutant: training skips GPT-2's pre-tokenizer and counts pairs over whole text pieces.

Misconception: pre-tokenization is an optional speed-up. Without it, pairs such
as (b"e", b" ") or (b".", b"\\n") that straddle word boundaries are merged, so
tokens swallow spaces and punctuation from the next word.
"""


def count_pretokens(text, special_tokens):
    splitter = special_splitter(special_tokens)
    pieces = splitter.split(text)[::2] if splitter else [text]
    return Counter(piece for piece in pieces if piece)
