"""Mutant: every call rotates its tokens at positions 0, 1, ..., t-1, so each decoded token
gets RoPE at position 0.

Misconception: RoPE is applied to "the sequence", and a decode step's sequence is one
token long. The mask and the cache slots use start_pos, but the rotation does not.
"""


def _forward(self, x, cache=None, start_pos=0):
    b, t, d = x.shape

    def heads(y):
        return y.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

    q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
    start = torch.as_tensor(start_pos, dtype=torch.long).reshape(-1).expand(b)
    positions = start[:, None] + torch.arange(t)
    if self.rope:
        local = torch.arange(t).expand(b, t)  # the bug: positions within this call
        q, k = apply_rope(q, local), apply_rope(k, local)
    if cache is None:
        keys, values, key_pos = k, v, positions
    else:
        cache.write(positions, k, v)
        end = int(positions.max()) + 1
        keys, values = cache.k[:, :, :end], cache.v[:, :, :end]
        key_pos = torch.arange(end).expand(b, end)
    allowed = key_pos[:, None, None, :] <= positions[:, None, :, None]
    scores = q @ keys.transpose(-2, -1) / self.head_dim**0.5
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    return self.o_proj((weights @ values).transpose(1, 2).reshape(b, t, d))


CachedSelfAttention.forward = _forward
