"""Mutant: a new running maximum rescales the running sum l_i but not the accumulator.

Misconception: only the normaliser depends on the maximum. acc was summed as
exp(s - m_old) * v too, so it must be multiplied by exp(m_old - m_new) as well;
otherwise earlier tiles get too much weight whenever the maximum grows.
"""


def _online_update(m_i, l_i, acc, s, v_tile):
    m_new = torch.maximum(m_i, s.amax(dim=-1, keepdim=True))
    p = torch.exp(s - m_new)
    l_i = l_i * torch.exp(m_i - m_new) + p.sum(dim=-1, keepdim=True)
    acc = acc + p @ v_tile
    return m_new, l_i, acc
