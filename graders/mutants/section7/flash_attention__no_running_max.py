"""Mutant: no running maximum: p = exp(s) as it is, summed into l and acc.

Misconception: "the maximum is only there for numerical safety, and my scores are
small". The result is exact while every exp() fits in the dtype, so unit-scale test
inputs pass; a score above 709 (float64; 88 in float32) overflows to inf, and inf / inf
is NaN.
"""


def _online_update(m_i, l_i, acc, s, v_tile):
    p = torch.exp(s)
    return torch.zeros_like(m_i), l_i + p.sum(dim=-1, keepdim=True), acc + p @ v_tile
