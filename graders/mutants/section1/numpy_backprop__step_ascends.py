"""Mutant: step() adds the gradient instead of subtracting it.

Misconception: the gradient points the way to go. It points uphill, towards a
larger loss; descent moves against it.
"""


class MLP(MLP):
    def step(self, lr):
        for layer in self.layers:
            if isinstance(layer, Linear):
                layer.W = layer.W + lr * layer.dW
                layer.b = layer.b + lr * layer.db
