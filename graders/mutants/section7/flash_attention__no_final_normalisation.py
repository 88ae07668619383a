"""Mutant: the output is the accumulator itself, never divided by the running sum.

Misconception: the online softmax normalises as it goes. It only keeps the
numerator and denominator consistent; out = acc / l_i happens once, at the end.
"""


def _finish(m_i, l_i, acc):
    return acc, (m_i + torch.log(l_i)).squeeze(-1)
