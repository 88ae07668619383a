"""Mutant: the default state is torch.zeros(B, H), float32 whatever x's dtype.

Misconception: zeros are zeros. In float64 the float32 state meets float64
weights and the matrix product fails; the state must follow x's dtype
(x.new_zeros).
"""

REFERENCE_PATCH = [
    (
        "            zeros = x.new_zeros(x.shape[0], self.hidden_size)",
        "            zeros = torch.zeros(x.shape[0], self.hidden_size)",
    ),
]
