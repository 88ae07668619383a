"""Mutant: the accumulator is rescaled to a new running maximum, the running sum l_i is not.

Misconception: l_i is "just a counter". It is a sum of exp(s - m_old) terms and
must follow the maximum like acc does, or out = acc / l_i and lse are off.
"""


def _online_update(m_i, l_i, acc, s, v_tile):
    m_new = torch.maximum(m_i, s.amax(dim=-1, keepdim=True))
    alpha = torch.exp(m_i - m_new)
    p = torch.exp(s - m_new)
    l_i = l_i + p.sum(dim=-1, keepdim=True)
    acc = acc * alpha + p @ v_tile
    return m_new, l_i, acc
