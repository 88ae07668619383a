"""Mutant: the mask of every call is torch's is_causal=True, so with fewer queries than keys
query i sees keys 0..i: at decode the new token sees only the first cached key.

Misconception: the causal mask that is right for the prefill (queries and keys both
start at position 0) stays right after it. With a cache the queries start at
start_pos: the triangle has to be shifted by start_pos (bottom-right aligned).
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
        keys, values = k, v
    else:
        cache.write(positions, k, v)
        end = int(positions.max()) + 1
        keys, values = cache.k[:, :, :end], cache.v[:, :, :end]
    out = F.scaled_dot_product_attention(q, keys, values, is_causal=True)  # the bug: top-left triangle
    return self.o_proj(out.transpose(1, 2).reshape(b, t, d))


CachedSelfAttention.forward = _forward
