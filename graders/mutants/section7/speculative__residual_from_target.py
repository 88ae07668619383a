"""Mutant: a rejected draft is replaced by a token sampled from the target p itself.

Misconception: "if the draft is wrong, just ask the target". But the tokens where q
covers p were already emitted through acceptances; sampling them again from p
counts them twice, so the output is no longer distributed as p.
"""


def residual_distribution(p, q):
    return p.clone()
