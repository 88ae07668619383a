"""Mutant: top-p keeps a token only while the cumulative probability INCLUDING it is < p.

Misconception: "keep the tokens whose cumulative probability is below p" reads like the
definition, but it drops the token that crosses p: the nucleus is the smallest set whose
mass REACHES p, so its last token is the one that takes the total to p or beyond.
"""


def top_p_filter(logits, p, min_keep=1):
    if not 0 <= p <= 1:
        raise ValueError(f"top_p must be in [0, 1], got {p}")
    ranked, order = logits.sort(dim=-1, descending=True)
    cumulative = ranked.softmax(dim=-1).cumsum(dim=-1)
    drop = cumulative >= p
    drop[..., :min_keep] = False
    return logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
