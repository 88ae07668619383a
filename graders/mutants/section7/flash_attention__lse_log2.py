"""Mutant: lse returned in base 2, as m_i * log2(e) + log2(l_i).

Misconception: copying the Triton tutorial's exp2 trick (scores pre-multiplied
by log2(e)) into the returned statistic. The API's lse is the natural-log
logsumexp, which the backward pass uses as exp(score - lse).
"""


def _finish(m_i, l_i, acc):
    return acc / l_i, (m_i * math.log2(math.e) + torch.log2(l_i)).squeeze(-1)
