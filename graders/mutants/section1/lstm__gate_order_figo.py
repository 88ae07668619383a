"""Mutant: the stacked gate rows read in the order f, i, g, o.

Misconception: any order will do (Colah's post introduces the forget gate
first). torch stacks the rows i, f, g, o; with copied weights the order must match.
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
        f, i, g, o = gates.chunk(4, dim=1)
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_next), c_next
