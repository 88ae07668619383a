"""Mutant: scores always scaled by 1/sqrt(D); the sm_scale argument is ignored.

Misconception: the scale is fixed by the head size. Callers pass their own
(e.g. muP or a temperature); sm_scale=None is only the default.
"""

_reference_flash = flash_attention_torch


def flash_attention_torch(q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64):
    return _reference_flash(q, k, v, causal=causal, sm_scale=None, block_q=block_q, block_k=block_k)
