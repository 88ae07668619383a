"""Mutant: KVCache.write writes wherever it is told; past max_len, torch's indexing error
is all the caller gets.

Misconception: torch already raises when the index is out of range. It does, with a
message about a dimension's size that says nothing about the cache or max_len (and
negative positions would silently wrap around).
"""


def _write(self, positions, k_new, v_new):
    positions = torch.as_tensor(positions)
    rows = torch.arange(self.batch)[:, None]
    self.k[rows, :, positions] = k_new.transpose(1, 2).to(self.k.dtype)
    self.v[rows, :, positions] = v_new.transpose(1, 2).to(self.v.dtype)


KVCache.write = _write
