"""Public tests for exercise 1.2b (numpy backprop). Run: pytest exercises/section1

Each layer, the loss and the whole MLP are compared with torch's autograd in float64
on small batches drawn at random (a few examples each: any sizes from 1 to 6, both
activations, logits near 1000), one step must be gradient descent, and the MLP must
learn the two-spirals toy set. When a check fails it says which known mistake your
output looks like. The hidden graders draw more cases and also check every gradient
against central differences of your own loss.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import SEEDS, CheckFailure, Draw, assert_close, load_support, unchanged

pytestmark = pytest.mark.exercise("1.2b")
support = load_support("1.2b")
mistakes = support.MISCONCEPTIONS

LINEAR_HINTS = {
    "y": "y = x @ W + b, W has shape (in_features, out_features)",
    "dx": "dx = grad_out @ W.T, with the W the layer holds now",
    "dW": "dW = x.T @ grad_out, with the x kept in forward",
    "db": "db adds grad_out up over the batch rows",
}


def check_linear(impl, n, n_in, n_out, seed):
    rng = Draw(seed).rng
    lin = impl.Linear(n_in, n_out, seed=seed % 1000)
    W, b = rng.normal(size=(n_in, n_out)), rng.normal(size=n_out)
    lin.W, lin.b = W.copy(), b.copy()  # replaced after __init__, as step() does
    x, grad_out = rng.normal(size=(n, n_in)), rng.normal(size=(n, n_out))
    with unchanged(x, grad_out, names=["x", "grad_out"]):
        y = lin.forward(x)
        dx = lin.backward(grad_out)
    want = dict(zip(["y", "dx", "dW", "db"], support.torch_layer("linear", x, grad_out, W, b)))
    args = (x, grad_out, W, b, seed % 1000)
    where = f"Linear({n_in}, {n_out}) on a batch of {n}"
    assert_close(y, want["y"], name=f"forward of {where}", hint=LINEAR_HINTS["y"])
    for what, got in (("dx", dx), ("dW", lin.dW), ("db", lin.db)):
        assert_close(
            got,
            want[what],
            name=f"{what} of {where}",
            hint=LINEAR_HINTS[what],
            suspects=mistakes.on(f"Linear.{what}", *args),
        )


def test_linear_forward_and_backward(impl):
    check_linear(impl, 5, 3, 4, seed=11)


@settings(max_examples=10)
@given(case=support.linear_case())
def test_linear_matches_torch(impl, case):
    check_linear(impl, *case)


def test_linear_initialisation(impl):
    lin = impl.Linear(300, 200, seed=3)
    W, b = np.asarray(lin.W), np.asarray(lin.b)
    if W.shape != (300, 200) or b.shape != (200,):
        raise CheckFailure(
            f"Linear(300, 200): W {W.shape}, b {b.shape}; expected W (300, 200) and b (200,)",
            hint="W has shape (in_features, out_features) so that y = x @ W + b",
        )
    std, want = float(W.std()), np.sqrt(2 / 300)
    if abs(std - want) > 0.05 * want or abs(float(W.mean())) > 0.01 or b.any():
        raise CheckFailure(
            f"Linear(300, 200): W has mean {W.mean():.4f} and std {std:.4f}, b has {int((b != 0).sum())} "
            f"non-zeros; expected mean 0, std sqrt(2/300) = {want:.4f} and b = 0",
            hint="He initialisation: rng.normal(0, sqrt(2 / in_features), (in_features, out_features))",
        )
    if not np.array_equal(np.asarray(impl.Linear(300, 200, seed=3).W), W):
        raise CheckFailure("Linear(300, 200, seed=3) gave different W twice", hint="use default_rng(seed)")


def check_activation(impl, kind, x, grad_out):
    layer = impl.ReLU() if kind == "relu" else impl.Tanh()
    with unchanged(x, grad_out, names=["x", "grad_out"]):
        y = layer.forward(x)
        dx = layer.backward(grad_out)
    want_y, want_dx = support.torch_layer(kind, x, grad_out)
    name = "ReLU" if kind == "relu" else "Tanh"
    assert_close(y, want_y, name=f"{name} forward, shape {x.shape}")
    assert_close(
        dx,
        want_dx,
        name=f"{name} backward, shape {x.shape}",
        hint="relu: grad_out where the input was > 0; tanh: grad_out * (1 - y**2)",
        suspects=mistakes.on(f"{name}.backward", x, grad_out),
    )


@pytest.mark.parametrize("kind", ["relu", "tanh"])
def test_activations(impl, draw, kind):
    check_activation(impl, kind, draw.rng.normal(size=(4, 6)), draw.rng.normal(size=(4, 6)))


@settings(max_examples=8)
@given(
    kind=st.sampled_from(["relu", "tanh"]), shape=st.lists(support.sizes, min_size=1, max_size=3), seed=SEEDS
)
def test_activations_any_shape(impl, kind, shape, seed):
    rng = Draw(seed).rng
    check_activation(impl, kind, rng.normal(0, 1.5, shape), rng.normal(size=shape))


def check_cross_entropy(impl, logits, labels, where):
    with unchanged(logits, labels, names=["logits", "labels"]):
        loss, dlogits = impl.softmax_cross_entropy(logits, labels)
    want_loss, want_d = support.torch_cross_entropy(logits, labels)
    assert_close(
        np.array(float(loss)),
        np.array(want_loss),
        name=f"loss {where}",
        hint="the mean over the batch of -log softmax(logits)[label]",
        suspects=mistakes.on("softmax_cross_entropy.loss", logits, labels),
    )
    assert_close(
        dlogits,
        want_d,
        name=f"dlogits {where}",
        hint="(softmax - one_hot) / N",
        suspects=mistakes.on("softmax_cross_entropy.dlogits", logits, labels),
    )


def test_softmax_cross_entropy(impl, draw):
    logits, labels = draw.rng.normal(size=(6, 3)) * 3, draw.integers(0, 3, size=6)
    check_cross_entropy(impl, logits, labels, "for 6 rows, 3 classes")


@settings(max_examples=10)
@given(n=support.sizes, c=st.integers(2, 6), seed=SEEDS)
def test_softmax_cross_entropy_any_size(impl, n, c, seed):
    rng = Draw(seed)
    logits, labels = rng.rng.normal(0, 3, (n, c)), rng.integers(0, c, size=n)
    check_cross_entropy(impl, logits, labels, f"for {n} rows, {c} classes")


def test_softmax_cross_entropy_large_logits(impl, draw):
    logits, labels = draw.rng.normal(0, 800, (6, 4)), draw.integers(0, 4, size=6)
    logits[0, labels[0]] = 1000.0  # exp overflows at the label itself
    check_cross_entropy(impl, logits, labels, "for logits near 1000")


def mlp_and_batch(impl, case):
    sizes, activation, n, seed = case
    rng = np.random.default_rng(seed)
    mlp = impl.MLP(sizes, activation, seed=seed % 1000)
    layers = list(mlp.layers)
    if len(layers) != 2 * len(sizes) - 3:
        raise CheckFailure(
            f"MLP({sizes}).layers has {len(layers)} entries; expected {2 * len(sizes) - 3} "
            "(Linear, activation, ..., Linear)",
            hint="an activation after every Linear but the last",
        )
    Ws, bs = support.random_mlp_weights(sizes, rng)
    for layer, W, b in zip(layers[0::2], Ws, bs):
        layer.W, layer.b = W.copy(), b.copy()
    x, labels = rng.normal(size=(n, sizes[0])), rng.integers(0, sizes[-1], size=n)
    return mlp, layers[0::2], (Ws, bs, x, labels, activation, seed % 1000)


@settings(max_examples=8)
@given(case=support.mlp_case())
def test_mlp_matches_torch(impl, case):
    mlp, linears, args = mlp_and_batch(impl, case)
    Ws, bs, x, labels, activation, _ = args
    logits = mlp.forward(x)
    loss, dlogits = impl.softmax_cross_entropy(logits, labels)
    dx = mlp.backward(dlogits)
    want = support.torch_mlp(Ws, bs, x, labels, activation)
    where = f"MLP({case[0]}, {activation!r}), batch of {len(x)}"
    assert_close(logits, want["logits"], name=f"logits of {where}", hint="Linear, activation, ..., Linear")
    assert_close(
        np.array(float(loss)), want["loss"], name=f"loss of {where}", suspects=mistakes.on("MLP.loss", *args)
    )
    assert_close(
        dx,
        want["dx"],
        name=f"dx returned by backward of {where}",
        hint="run the layers' backward in reverse order",
        suspects=mistakes.on("MLP.dx", *args),
    )
    for k, layer in enumerate(linears):
        for what in ("dW", "db"):
            assert_close(
                getattr(layer, what),
                want[what][k],
                name=f"{what} of Linear layer {k} in {where}",
                suspects=mistakes.on(f"MLP.{what}", *args, k=k),
            )


@settings(max_examples=5)
@given(case=support.mlp_case(), lr=st.sampled_from([0.01, 0.1, 0.5]))
def test_mlp_step_is_gradient_descent(impl, case, lr):
    mlp, linears, args = mlp_and_batch(impl, case)
    Ws, bs, x, labels, activation, _ = args
    _, dlogits = impl.softmax_cross_entropy(mlp.forward(x), labels)
    mlp.backward(dlogits)
    mlp.step(lr)
    want = support.torch_mlp(Ws, bs, x, labels, activation)
    for k, layer in enumerate(linears):
        for what, before, grads in (("W", Ws, want["dW"]), ("b", bs, want["db"])):
            assert_close(
                getattr(layer, what),
                before[k] - lr * grads[k],
                name=f"{what} of Linear layer {k} after step({lr})",
                hint=f"step(lr) moves every Linear against its gradient: {what} -= lr * d{what}",
                suspects=mistakes.on(f"MLP.step.{what}", *args, k=k, lr=lr),
            )


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
