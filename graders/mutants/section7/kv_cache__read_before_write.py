"""Mutant: attention reads the cache, then the call's keys and values are written: the new
tokens meet the zeros still in their own slots instead of themselves.

Misconception: the cache holds "the past", so the present is added after it has been
used. But a token attends to itself (and a prefill chunk to its own earlier tokens).
"""


def _forward(self, x, cache=None, start_pos=0):
    b, t, d = x.shape

    def heads(y):
        return y.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

    q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
    start = torch.as_tensor(start_pos, dtype=torch.long).reshape(-1).expand(b)
    positions = start[:, None] + torch.arange(t)
    if self.rope:
        q, k = apply_rope(q, positions), apply_rope(k, positions)
    if cache is None:
        keys, values, key_pos = k, v, positions
    else:
        end = int(positions.max()) + 1
        keys, values = cache.k[:, :, :end].clone(), cache.v[:, :, :end].clone()  # the bug: read first
        key_pos = torch.arange(end).expand(b, end)
    allowed = key_pos[:, None, None, :] <= positions[:, None, :, None]
    scores = q @ keys.transpose(-2, -1) / self.head_dim**0.5
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    out = self.o_proj((weights @ values).transpose(1, 2).reshape(b, t, d))
    if cache is not None:
        cache.write(positions, k, v)  # ... then write
    return out


CachedSelfAttention.forward = _forward
