"""Mutant: sigmoid on all four gates, the candidate g included.

Misconception: "the gates are sigmoids". i, f and o are; g holds the values to
write, which must be able to be negative: tanh.
"""


class LSTMCell(LSTMCell):
    def forward(self, x, state=None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        gates = x @ self.weight_ih.T + h @ self.weight_hh.T
        if self.bias_ih is not None:
            gates = gates + self.bias_ih + self.bias_hh
        i, f, g, o = torch.sigmoid(gates).chunk(4, dim=1)
        c_next = f * c + i * g
        return o * torch.tanh(c_next), c_next
