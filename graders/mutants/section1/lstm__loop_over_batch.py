"""Mutant: the right cell, computed one batch row at a time in a Python loop.

Misconception: a loop is as good as a matrix product. The numbers are right,
but every row pays Python and dispatch overhead.
"""

_reference_cell_forward = LSTMCell.forward


class LSTMCell(LSTMCell):
    def forward(self, x, state=None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        rows = [
            _reference_cell_forward(self, x[b : b + 1], (state[0][b : b + 1], state[1][b : b + 1]))
            for b in range(x.shape[0])
        ]
        return torch.cat([r[0] for r in rows]), torch.cat([r[1] for r in rows])
