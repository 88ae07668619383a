"""Mutant: softmax as exp(x) / sum(exp(x)) without subtracting the maximum.

Misconception: the textbook formula is safe in floating point. exp(1000) is
inf, and inf / inf is NaN.
"""


def softmax(x, dim=-1):
    exps = torch.exp(x)
    return exps / exps.sum(dim=dim, keepdim=True)
