"""Mutant: multi-head attention scaled by sqrt(d_model) instead of sqrt(head_dim).

Misconception: the scale belongs to the model width. Each head's dot products
run over head_dim features, so that is the d in 1/sqrt(d).
"""

_reference_sdpa = scaled_dot_product_attention


class MultiHeadAttention(MultiHeadAttention):
    def forward(self, query, key=None, value=None, mask=None, is_causal=False):
        key = query if key is None else key
        value = key if value is None else value
        shrink = math.sqrt(self.head_dim / self.d_model)  # q/sqrt(head_dim) -> q/sqrt(d_model)
        q = self._split_heads(self.q_proj(query)) * shrink
        k = self._split_heads(self.k_proj(key))
        v = self._split_heads(self.v_proj(value))
        out = _reference_sdpa(q, k, v, mask=mask, is_causal=is_causal)
        return self.out_proj(self._merge_heads(out))
