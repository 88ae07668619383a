"""Mutant: heads split as view(B, L, head_dim, n_heads), interleaving features.

Misconception: any reshape to n_heads pieces will do. Head h must own the
contiguous features h*head_dim ... (h+1)*head_dim - 1 of the projection.
"""


class MultiHeadAttention(MultiHeadAttention):
    def _split_heads(self, x):
        b, length, _ = x.shape
        return x.view(b, length, self.head_dim, self.n_heads).permute(0, 3, 1, 2)

    def _merge_heads(self, x):
        b, _, length, _ = x.shape
        return x.permute(0, 2, 3, 1).reshape(b, length, self.d_model)
