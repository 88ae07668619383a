"""Public tests for exercise 1.2b (numpy backprop). Run: pytest exercises/section1

Each layer is compared with torch's autograd on one small batch, and the MLP
must learn the two-spirals toy set. The hidden graders also draw random
shapes, check every gradient against central differences and torch, and
look at numerical stability.
"""

import numpy as np
import pytest

from llmkit.testing import CheckFailure, assert_close, load_support

pytestmark = pytest.mark.exercise("1.2b")
support = load_support("1.2b")


def test_linear_forward_and_backward(impl, draw):
    lin = impl.Linear(3, 4, seed=1)
    lin.W, lin.b = draw.rng.normal(size=(3, 4)), draw.rng.normal(size=4)
    x, grad_out = draw.rng.normal(size=(5, 3)), draw.rng.normal(size=(5, 4))
    y = lin.forward(x)
    dx = lin.backward(grad_out)
    want_y, want_dx, want_dW, want_db = support.torch_layer("linear", x, grad_out, lin.W, lin.b)
    assert_close(y, want_y, name="Linear.forward(x)", hint="y = x @ W + b, W has shape (in, out)")
    assert_close(dx, want_dx, name="dx from Linear.backward", hint="dx = grad_out @ W.T")
    assert_close(lin.dW, want_dW, name="Linear.dW", hint="dW = x.T @ grad_out")
    assert_close(lin.db, want_db, name="Linear.db", hint="db adds grad_out up over the batch rows")


@pytest.mark.parametrize("kind", ["relu", "tanh"])
def test_activations(impl, draw, kind):
    layer = impl.ReLU() if kind == "relu" else impl.Tanh()
    x, grad_out = draw.rng.normal(size=(4, 6)), draw.rng.normal(size=(4, 6))
    want_y, want_dx = support.torch_layer(kind, x, grad_out)
    assert_close(layer.forward(x), want_y, name=f"{kind} forward")
    assert_close(
        layer.backward(grad_out),
        want_dx,
        name=f"{kind} backward",
        hint="relu: pass grad_out where the input was > 0; tanh: grad_out * (1 - y**2)",
    )


def test_softmax_cross_entropy(impl, draw):
    logits, labels = draw.rng.normal(size=(6, 3)) * 3, draw.integers(0, 3, size=6)
    loss, dlogits = impl.softmax_cross_entropy(logits, labels)
    want_loss, want_d = support.torch_cross_entropy(logits, labels)
    assert_close(float(loss), want_loss, name="loss", hint="the mean over the batch of -log p[label]")
    assert_close(dlogits, want_d, name="dlogits", hint="(softmax - one_hot) / N")


def test_mlp_learns_two_spirals(impl):
    X, y = support.two_spirals(100, seed=0)
    mlp = impl.MLP([2, 32, 32, 2], "relu", seed=0)
    for _ in range(600):
        _, dlogits = impl.softmax_cross_entropy(mlp.forward(X), y)
        mlp.backward(dlogits)
        mlp.step(0.5)
    accuracy = float((np.asarray(mlp.forward(X)).argmax(axis=1) == y).mean())
    if accuracy < 0.95:
        raise CheckFailure(
            f"after 600 steps of gradient descent (lr 0.5) the MLP classifies {accuracy:.1%} of the "
            "two spirals correctly; expected at least 95%",
            hint="check each layer's gradient with the tests above first; step() must subtract lr * gradient",
        )
