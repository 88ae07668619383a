"""Mutant: the cache keeps a (max_len, max_len) float causal mask, as nanoGPT keeps a
(block_size, block_size) one, and every call slices its rows out of it.

Misconception: the mask is built once and reused, which feels efficient. Its size
grows with max_len squared: at max_len = 4096 it is 64 MiB per layer, while the keys
and values of a small model take a few MiB.
"""

_ReferenceKVCache = KVCache


class KVCache(_ReferenceKVCache):
    def __init__(self, batch, max_len, n_heads, head_dim, dtype=torch.float32):
        super().__init__(batch, max_len, n_heads, head_dim, dtype)
        self.mask = torch.tril(torch.ones(max_len, max_len))  # the bug: max_len x max_len


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
        keys, values = k, v
        allowed = positions[:, None, None, :] <= positions[:, None, :, None]
    else:
        cache.write(positions, k, v)
        end = int(positions.max()) + 1
        keys, values = cache.k[:, :, :end], cache.v[:, :, :end]
        allowed = cache.mask[positions][:, None, :, :end].bool()  # rows of the big mask
    scores = q @ keys.transpose(-2, -1) / self.head_dim**0.5
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    return self.o_proj((weights @ values).transpose(1, 2).reshape(b, t, d))


CachedSelfAttention.forward = _forward
