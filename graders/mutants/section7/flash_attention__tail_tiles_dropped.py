"""Mutant: tiles counted with floor division, range(n // block_q) and range(stop // block_k).

Misconception: "n tokens make n // block tiles". The last, shorter tile of queries
is never computed (its rows keep whatever torch.empty held) and the last, shorter
tile of keys is never visited; with N smaller than a block nothing is computed.
"""


def flash_attention_torch(q, k, v, causal=False, sm_scale=None, block_q=64, block_k=64):
    b, h, n, d = q.shape
    scale = 1.0 / math.sqrt(d) if sm_scale is None else sm_scale
    out = torch.empty_like(q)
    lse = q.new_empty(b, h, n)
    for qt in range(n // block_q):
        q_start, q_end = qt * block_q, (qt + 1) * block_q
        q_tile = q[:, :, q_start:q_end] * scale
        m_i = q.new_full((b, h, block_q, 1), float("-inf"))
        l_i = q.new_zeros(b, h, block_q, 1)
        acc = q.new_zeros(b, h, block_q, d)
        stop = q_end if causal else n
        for kt in range(stop // block_k):
            k_start, k_end = kt * block_k, (kt + 1) * block_k
            s = q_tile @ k[:, :, k_start:k_end].transpose(-2, -1)
            if causal:
                s = _mask_tile(s, q_start, k_start)
            m_i, l_i, acc = _online_update(m_i, l_i, acc, s, v[:, :, k_start:k_end])
        out[:, :, q_start:q_end], lse[:, :, q_start:q_end] = _finish(m_i, l_i, acc)
    return out, lse
