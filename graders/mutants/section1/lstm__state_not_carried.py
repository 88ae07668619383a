"""Mutant: lstm() gives every time step the initial state.

Misconception: the time steps are independent. The recurrence is the point:
step t starts from the state step t-1 produced.
"""


def lstm(x, cell, state=None):
    outputs = []
    for x_t in x:
        h, c = cell(x_t, state)
        outputs.append(h)
    return torch.stack(outputs), (h, c)
