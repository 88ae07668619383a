"""Mutant: lse returned as log(l_i), without the running maximum.

Misconception: l_i is "the sum of the exponentials", so its log is the logsumexp.
It is the sum of exp(score - m_i): the logsumexp is m_i + log(l_i).
"""


def _finish(m_i, l_i, acc):
    return acc / l_i, torch.log(l_i).squeeze(-1)
