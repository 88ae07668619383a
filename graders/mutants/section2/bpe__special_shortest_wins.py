"""Mutant: overlapping special tokens are tried shortest first.

Misconception: the order of alternatives in a regex does not matter. Regex
alternation takes the first alternative that matches, so "<|a|>" beats
"<|a|><|a|>" unless the longer one comes first.
"""


def special_splitter(special_tokens):
    specials = sorted(set(special_tokens), key=len)
    if not specials:
        return None
    return regex.compile("(" + "|".join(regex.escape(s) for s in specials) + ")")
