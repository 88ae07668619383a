"""Mutant: the bias gradient averages grad_out over the batch instead of summing it.

Misconception: the bias is shared by the batch, so its gradient is an average.
It was added to every row, so every row's gradient adds up (the 1/N of a mean
loss is already inside grad_out).
"""


class Linear(Linear):
    def backward(self, grad_out):
        dx = super().backward(grad_out)
        self.db = grad_out.mean(axis=0)
        return dx
