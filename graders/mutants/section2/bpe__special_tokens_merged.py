"""Mutant: special tokens are left in the training text and counted like any other text.

Misconception: special tokens only matter at encoding time. Their bytes
("<|", "endoftext", "|>") then take part in merges and show up in the vocab.
"""


def count_pretokens(text, special_tokens):
    return Counter(PRETOKEN.findall(text))
