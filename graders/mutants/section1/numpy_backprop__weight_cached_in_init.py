"""Mutant: Linear's backward returns grad_out @ W.T computed with a W captured at
construction, so it ignores later updates.

Misconception: caching parameters in __init__ (here: the transposed weight for
speed) and forgetting that step() and the tests replace W.
"""


class Linear(Linear):
    def __init__(self, in_features, out_features, seed=0):
        super().__init__(in_features, out_features, seed)
        self._W_T = self.W.T.copy()

    def backward(self, grad_out):
        super().backward(grad_out)
        return grad_out @ self._W_T
