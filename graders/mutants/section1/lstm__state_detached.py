"""Mutant: lstm() detaches (h, c) before passing them to the next step.

Misconception: detaching the state is how RNNs are trained (truncated
backpropagation detaches between batches, not between the steps of one
sequence). The outputs are right; the gradients reach each step's input only
through that step, and none flows back along the sequence.
"""


def lstm(x, cell, state=None):
    outputs = []
    for x_t in x:
        h, c = cell(x_t, state)
        outputs.append(h)
        state = (h.detach(), c.detach())
    return torch.stack(outputs), (h, c)
