"""Support for exercise 1.2b (matrix backprop in numpy): oracles, data and the figure.

* :func:`two_spirals` — the deterministic toy set the MLP must learn (not
  linearly separable: a straight line gets about half of it right).
* :func:`torch_layers` — forward values and gradients of the same network by
  torch float64 autograd, from weights given as numpy arrays.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from llmkit.figures import Figure, new_figure, png


def two_spirals(n_per_class: int = 100, *, turns: float = 1.5, noise: float = 0.02, seed: int = 0):
    """Two interleaved spirals in the plane.

    Returns ``(X, y)``: ``X`` float64 of shape (2 * n_per_class, 2) with
    coordinates in about [-1, 1], ``y`` int64 labels 0/1. The same arguments
    always give the same arrays.
    """
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0.0, 1.0, n_per_class))  # more points further out, where the arms are long
    theta = t * turns * 2.0 * np.pi
    arm = np.stack([t * np.cos(theta), t * np.sin(theta)], axis=1)
    X = np.concatenate([arm, -arm]) + rng.normal(0.0, noise, (2 * n_per_class, 2))
    y = np.concatenate([np.zeros(n_per_class, np.int64), np.ones(n_per_class, np.int64)])
    order = rng.permutation(2 * n_per_class)
    return X[order].astype(np.float64), y[order]


def linear_accuracy(X: np.ndarray, y: np.ndarray) -> float:
    """Training accuracy of the best least-squares linear classifier (a baseline)."""
    A = np.concatenate([X, np.ones((len(X), 1))], axis=1)
    w, *_ = np.linalg.lstsq(A, 2.0 * y - 1.0, rcond=None)
    return float(((A @ w > 0) == (y == 1)).mean())


def _t(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=grad)


def torch_mlp(weights, biases, x, labels, activation: str = "relu"):
    """Logits, mean cross-entropy loss and gradients by torch float64 autograd.

    ``weights[k]`` has shape (in, out) and the layer computes ``h @ W + b``;
    an activation follows every layer but the last. Returns a dict of numpy
    arrays: logits, loss (0-d), dx, dW (list), db (list), dlogits.
    """
    xs = _t(x, grad=True)
    Ws = [_t(w, grad=True) for w in weights]
    bs = [_t(b, grad=True) for b in biases]
    h = xs
    for k, (W, b) in enumerate(zip(Ws, bs)):
        h = h @ W + b
        if k < len(Ws) - 1:
            h = torch.relu(h) if activation == "relu" else torch.tanh(h)
    logits = h
    logits.retain_grad()
    loss = F.cross_entropy(logits, torch.as_tensor(np.asarray(labels), dtype=torch.int64))
    loss.backward()
    return {
        "logits": logits.detach().numpy(),
        "loss": loss.detach().numpy(),
        "dx": xs.grad.numpy(),
        "dW": [W.grad.numpy() for W in Ws],
        "db": [b.grad.numpy() for b in bs],
        "dlogits": logits.grad.numpy(),
    }


def torch_layer(kind: str, x: np.ndarray, grad_out: np.ndarray, W=None, b=None):
    """One layer's output and gradients by torch float64 autograd: kind is linear, relu or tanh.

    Returns (y, dx) or, for linear, (y, dx, dW, db) as numpy arrays.
    """
    xs = _t(x, grad=True)
    if kind == "linear":
        Wt, bt = _t(W, grad=True), _t(b, grad=True)
        y = xs @ Wt + bt
    else:
        y = torch.relu(xs) if kind == "relu" else torch.tanh(xs)
    y.backward(_t(grad_out))
    if kind == "linear":
        return y.detach().numpy(), xs.grad.numpy(), Wt.grad.numpy(), bt.grad.numpy()
    return y.detach().numpy(), xs.grad.numpy()


def torch_cross_entropy(logits: np.ndarray, labels: np.ndarray):
    """(mean cross-entropy loss as a float, d loss / d logits) by torch float64 autograd."""
    z = _t(logits, grad=True)
    loss = F.cross_entropy(z, torch.as_tensor(np.asarray(labels), dtype=torch.int64))
    loss.backward()
    return float(loss.detach()), z.grad.numpy()


def figure() -> Figure:
    """The two spirals, and how well a straight line separates them."""
    X, y = two_spirals(200)
    fig, ax = new_figure(4.8, 4.4)
    for label, color in ((0, "#1a73e8"), (1, "#e8710a")):
        ax.scatter(*X[y == label].T, s=10, c=color, label=f"class {label}")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(
        f"The two spirals: the best straight line gets {linear_accuracy(X, y):.0%} right;\n"
        "your MLP must reach 95 %", fontsize=10,
    )  # fmt: skip
    return png(fig), "The two-spirals data set, two interleaved classes"
