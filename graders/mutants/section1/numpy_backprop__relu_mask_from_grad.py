"""Mutant: ReLU's backward masks where the incoming gradient is > 0.

Misconception: "relu lets positive things through" applied to the gradient.
The mask is where the forward *input* was > 0; gradients of either sign pass there.
"""


class ReLU(ReLU):
    def backward(self, grad_out):
        return np.where(grad_out > 0, grad_out, 0.0)
