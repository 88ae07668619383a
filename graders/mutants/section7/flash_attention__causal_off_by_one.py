"""Mutant: the causal mask also hides the diagonal (key j visible iff j < i).

Misconception: "causal means only the past". Query i sees keys 0..i, itself
included; without the diagonal, query 0 sees no key at all (-inf - -inf is NaN)
and every other row loses its own key.
"""


def _mask_tile(s, q_start, k_start):
    bq, bk = s.shape[-2:]
    rows = torch.arange(q_start, q_start + bq)[:, None]
    cols = torch.arange(k_start, k_start + bk)[None, :]
    return s.masked_fill(cols >= rows, float("-inf"))
