"""Exercise 1.2b — matrix backpropagation in numpy.

Replace every ``raise NotImplementedError`` with your implementation, then run

    pytest exercises/section1/test_numpy_backprop.py      (or: llmkit check 1.2b)

numpy only (no torch, no autograd library): you write every gradient yourself.
All arrays are float64; a batch is the first axis (N rows).

The pattern every layer follows:

    y = layer.forward(x)          # remember what backward will need
    dx = layer.backward(dy)       # dy = dLoss/dy, same shape as y; returns dLoss/dx

and a layer with parameters also stores dLoss/dparameter (``dW``, ``db``)
during ``backward``. Chaining the layers' backward calls in reverse order
is backpropagation.

Shape check that catches most mistakes: every gradient has exactly the shape
of the thing it is the gradient of (dW like W, db like b, dx like x).
"""

from __future__ import annotations

import numpy as np  # noqa: F401


class Linear:
    """y = x @ W + b.

    ``Linear(in_features, out_features, seed=0)``:
        W: (in_features, out_features), He initialisation:
           ``np.random.default_rng(seed).normal(0, sqrt(2 / in_features), (in_features, out_features))``
        b: (out_features,), zeros
        dW, db: gradients, same shapes as W and b, filled by ``backward``.

    The tests may replace ``W`` and ``b`` with other arrays of the same shapes
    (assigning ``layer.W = ...``), so read them in ``forward``, don't copy them
    away in ``__init__``.

    forward(x): x (N, in_features) -> y (N, out_features). Keep x for backward.
    backward(grad_out): grad_out (N, out_features) = dLoss/dy.
        Sets self.dW (in_features, out_features) and self.db (out_features,),
        returns dLoss/dx (N, in_features). The bias was added to every row, so
        its gradient adds up over the rows of the batch.

    Do not modify the arrays you are given (x, grad_out) in place.
    """

    def __init__(self, in_features: int, out_features: int, seed: int = 0):
        raise NotImplementedError

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class ReLU:
    """y = max(x, 0) elementwise; any shape.

    backward(grad_out) returns grad_out where the *input* was > 0 and 0 elsewhere
    (the gradient at exactly 0 is 0, as in torch).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Tanh:
    """y = tanh(x) elementwise; any shape. d tanh(x)/dx = 1 - tanh(x)**2 = 1 - y**2."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over the batch, and its gradient.

    logits: (N, C) float64 scores; labels: (N,) ints in [0, C).
    Returns ``(loss, dlogits)``:
        loss    = mean over rows n of -log softmax(logits[n])[labels[n]]  (a Python float)
        dlogits = d loss / d logits, shape (N, C): (softmax(logits) - one_hot(labels)) / N

    Must be numerically stable: logits like 1000.0 must not give inf or NaN
    (subtract each row's maximum before exp). This is what
    ``torch.nn.functional.cross_entropy(logits, labels)`` computes.
    """
    raise NotImplementedError


class MLP:
    """A multi-layer perceptron for classification.

    ``MLP(sizes, activation="relu", seed=0)`` with e.g. sizes = [2, 64, 64, 2]:
        self.layers = [Linear(2, 64, seed=seed), act, Linear(64, 64, seed=seed + 1), act,
                       Linear(64, 2, seed=seed + 2)]
        an activation (ReLU() for "relu", Tanh() for "tanh") after every Linear but
        the last. The tests read and replace ``layers[k].W`` / ``.b`` of the Linear layers.

    forward(x): (N, sizes[0]) -> logits (N, sizes[-1]).
    backward(dlogits): backpropagates through every layer, last to first, so
        every Linear holds its dW and db; returns dLoss/dx (N, sizes[0]).
    step(lr): gradient descent on every Linear layer: W -= lr * dW, b -= lr * db.

    A training step is therefore:
        logits = mlp.forward(X)
        loss, dlogits = softmax_cross_entropy(logits, y)
        mlp.backward(dlogits)
        mlp.step(lr)
    """

    def __init__(self, sizes: list[int], activation: str = "relu", seed: int = 0):
        raise NotImplementedError

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dlogits: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def step(self, lr: float) -> None:
        raise NotImplementedError
