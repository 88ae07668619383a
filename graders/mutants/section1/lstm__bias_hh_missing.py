"""Mutant: only bias_ih is added; bias_hh is registered but never used.

Misconception: one bias per gate is enough, so the second is ignored. torch
adds both (they are redundant in theory, but trained weights depend on both).
"""


class LSTMCell(LSTMCell):
    def forward(self, x, state=None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        gates = x @ self.weight_ih.T + h @ self.weight_hh.T
        if self.bias_ih is not None:
            gates = gates + self.bias_ih
        i, f, g, o = gates.chunk(4, dim=1)
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_next), c_next
