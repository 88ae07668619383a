"""Mutant: paged_attention masks whole blocks: every slot of the blocks a sequence's
table names is attended, including the unwritten slots of its last block.

Misconception: the block table says which blocks are the sequence's, so everything
in them is. The last block is filled only up to context_len; its other slots hold
stale keys and values (another sequence's, or nothing yet).
"""

import torch
import torch.nn.functional as F


def paged_attention(q, k_cache, v_cache, block_tables, context_lens, scale=None):
    n_seqs, n_heads, dim = q.shape
    block_size = k_cache.shape[1]
    span = block_tables.shape[1] * block_size
    blocks = block_tables.long().clamp(min=0).flatten()
    keys = k_cache.index_select(0, blocks).view(n_seqs, span, n_heads, dim).transpose(1, 2)
    values = v_cache.index_select(0, blocks).view(n_seqs, span, n_heads, dim).transpose(1, 2)
    n_blocks = (context_lens.long() + block_size - 1) // block_size
    visible = torch.arange(span) < (n_blocks * block_size)[:, None]
    out = F.scaled_dot_product_attention(
        q[:, :, None, :], keys, values, attn_mask=visible[:, None, None, :], scale=scale
    )
    return out[:, :, 0, :]
