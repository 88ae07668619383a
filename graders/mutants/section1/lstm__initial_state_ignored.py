"""Mutant: lstm() starts every sequence from zeros, whatever state it is given.

Misconception: the initial state is always zeros, so the argument can be left
alone. A caller that splits a long sequence into chunks passes the last
chunk's (h, c) on; dropping it forgets everything before the chunk.
"""


def lstm(x, cell, state=None):
    outputs = []
    state = None
    for x_t in x:
        state = cell(x_t, state)
        outputs.append(state[0])
    return torch.stack(outputs), state
