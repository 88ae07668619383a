"""Mutant: c' = f * c + g (the input gate is computed but never applied).

Misconception: the candidate g is written to the cell as is; the input gate
decides how much of it to write.
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
        i, f, g, o = gates.chunk(4, dim=1)
        c_next = torch.sigmoid(f) * c + torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_next), c_next
