"""Mutant: the causal mask of every tile is built from tile-local indices.

Misconception: the mask is the same lower triangle in each tile. Query
q_start + ii may see key k_start + jj iff k_start + jj <= q_start + ii; with
local indices, tiles left of the diagonal lose their upper triangle and tiles
with unequal or unaligned blocks are cut at the wrong place.
"""


def _mask_tile(s, q_start, k_start):
    bq, bk = s.shape[-2:]
    local = torch.ones(bq, bk, dtype=torch.bool).tril()
    return s.masked_fill(~local, float("-inf"))
