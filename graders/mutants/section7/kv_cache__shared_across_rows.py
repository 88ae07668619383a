"""Mutant: the cache holds one row, (1, n_heads, max_len, head_dim), which every row of the
batch writes in turn and every row reads: the last row's keys win.

Misconception: keys and values belong to positions, and a batch dimension of 1
broadcasts in the attention product, so one row seems enough for the whole batch.
"""


class KVCache:
    def __init__(self, batch, max_len, n_heads, head_dim, dtype=torch.float32):
        self.batch, self.max_len, self.n_heads, self.head_dim = batch, max_len, n_heads, head_dim
        self._k = torch.zeros(1, n_heads, max_len, head_dim, dtype=dtype)  # the bug: one row
        self._v = torch.zeros(1, n_heads, max_len, head_dim, dtype=dtype)

    @property
    def k(self):
        return self._k.expand(self.batch, -1, -1, -1)

    @property
    def v(self):
        return self._v.expand(self.batch, -1, -1, -1)

    def write(self, positions, k_new, v_new):
        positions = torch.as_tensor(positions)
        if int(positions.min()) < 0 or int(positions.max()) >= self.max_len:
            raise ValueError(f"KV cache overflow: position {int(positions.max())} but max_len={self.max_len}")
        for row in range(k_new.shape[0]):
            self._k[0, :, positions[row]] = k_new[row].to(self._k.dtype)
            self._v[0, :, positions[row]] = v_new[row].to(self._v.dtype)
