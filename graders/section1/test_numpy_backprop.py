"""Hidden graders for exercise 1.2b (numpy backprop): 20 points.

Oracles: torch float64 autograd (exercises/support/section1/numpy_backprop.py) and
float64 central differences computed here by calling the learner's functions on
perturbed inputs. Shapes come from hypothesis, values from Draw(seed).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import SEEDS, CheckFailure, Draw, assert_close, load_support, unchanged

pytestmark = pytest.mark.exercise("1.2b")
support = load_support("1.2b")
mistakes = support.MISCONCEPTIONS

small = support.sizes
EPS = 1e-6
NUMERIC = dict(rtol=1e-6, atol=1e-8)  # central differences are accurate to ~1e-9 here

HINTS = {
    "y": "y = x @ W + b with W of shape (in_features, out_features)",
    "dx": "dx = grad_out @ W.T (same shape as x)",
    "dW": "dW = x.T @ grad_out (same shape as W), using the x cached in forward",
    "db": "the bias is added to every row, so db = grad_out.sum(axis=0) (not the mean, not one row)",
}


def normal(rng: Draw, *shape, scale=1.0) -> np.ndarray:
    return rng.rng.normal(0.0, scale, shape)


def scalar(value, name: str) -> np.ndarray:
    """A learner's loss as a 0-d float64 array (float, numpy scalar or 0-d array accepted)."""
    if isinstance(value, (float, int, np.floating)) or (isinstance(value, np.ndarray) and value.shape == ()):
        return np.array(float(value))
    raise CheckFailure(
        f"{name}: expected a number, got {type(value).__name__}",
        hint="return the loss as a Python float, e.g. float(loss)",
    )


def as_array(value, name: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise CheckFailure(f"{name}: expected a numpy array, got {type(value).__name__}")
    return value


# --- layers (8 points) -------------------------------------------------------


@pytest.mark.points(3)
@settings(max_examples=40)
@given(case=support.linear_case())
def test_linear_matches_torch(impl, case):
    n, n_in, n_out, seed = case
    rng = Draw(seed)
    lin = impl.Linear(n_in, n_out, seed=seed % 1000)
    W, b = normal(rng, n_in, n_out), normal(rng, n_out)
    lin.W, lin.b = W.copy(), b.copy()
    x, grad_out = normal(rng, n, n_in), normal(rng, n, n_out)
    with unchanged(x, grad_out, names=["x", "grad_out"]):
        y = as_array(lin.forward(x), "Linear.forward(x)")
        dx = as_array(lin.backward(grad_out), "Linear.backward(grad_out)")
    want = dict(zip(["y", "dx", "dW", "db"], support.torch_layer("linear", x, grad_out, W, b)))
    shapes = f"x {x.shape}, W {W.shape}"
    args = (x, grad_out, W, b, seed % 1000)
    assert_close(y, want["y"], name=f"Linear forward ({shapes})", hint=HINTS["y"])
    for what, got in (("dx", dx), ("dW", lin.dW), ("db", lin.db)):
        assert_close(
            got,
            want[what],
            name=f"{what} of Linear.backward ({shapes}, batch of {n})",
            hint=HINTS[what],
            suspects=mistakes.on(f"Linear.{what}", *args),
        )


@pytest.mark.points(1)
def test_linear_initialisation(impl):
    lin = impl.Linear(300, 200, seed=3)
    W, b = as_array(lin.W, "Linear.W"), as_array(lin.b, "Linear.b")
    if W.shape != (300, 200) or b.shape != (200,):
        raise CheckFailure(
            f"Linear(300, 200): W {W.shape}, b {b.shape}; expected W (300, 200) and b (200,)",
            hint="W has shape (in_features, out_features) so that y = x @ W + b",
        )
    std = float(W.std())
    if abs(std - np.sqrt(2 / 300)) > 0.05 * np.sqrt(2 / 300) or abs(float(W.mean())) > 0.01 or b.any():
        raise CheckFailure(
            f"Linear(300, 200): W has mean {W.mean():.4f} and std {std:.4f}, b has {int((b != 0).sum())} "
            f"non-zeros; expected mean 0, std sqrt(2/300) = {np.sqrt(2 / 300):.4f} and b = 0",
            hint="He initialisation: rng.normal(0, sqrt(2 / in_features), (in_features, out_features))",
        )
    again = impl.Linear(300, 200, seed=3)
    if not np.array_equal(again.W, W):
        raise CheckFailure("Linear(300, 200, seed=3) gave different W twice", hint="use default_rng(seed)")


@pytest.mark.points(2)
@settings(max_examples=30)
@given(shape=st.lists(small, min_size=1, max_size=3), seed=SEEDS)
def test_relu_matches_torch(impl, shape, seed):
    rng = Draw(seed)
    x, grad_out = normal(rng, *shape), normal(rng, *shape)
    layer = impl.ReLU()
    with unchanged(x, grad_out, names=["x", "grad_out"]):
        y, dx = layer.forward(x), layer.backward(grad_out)
    want_y, want_dx = support.torch_layer("relu", x, grad_out)
    assert_close(y, want_y, name=f"ReLU forward, shape {tuple(shape)}")
    assert_close(
        dx,
        want_dx,
        name=f"ReLU backward, shape {tuple(shape)}",
        hint="the mask is where the *input* x was > 0; the gradient flowing back can have any sign",
        suspects=mistakes.on("ReLU.backward", x, grad_out),
    )


@pytest.mark.points(2)
@settings(max_examples=30)
@given(shape=st.lists(small, min_size=1, max_size=3), seed=SEEDS)
def test_tanh_matches_torch(impl, shape, seed):
    rng = Draw(seed)
    x, grad_out = normal(rng, *shape, scale=1.5), normal(rng, *shape)
    layer = impl.Tanh()
    with unchanged(x, grad_out, names=["x", "grad_out"]):
        y, dx = layer.forward(x), layer.backward(grad_out)
    want_y, want_dx = support.torch_layer("tanh", x, grad_out)
    assert_close(y, want_y, name=f"Tanh forward, shape {tuple(shape)}")
    assert_close(
        dx,
        want_dx,
        name=f"Tanh backward, shape {tuple(shape)}",
        hint="d tanh(x)/dx = 1 - tanh(x)**2 = 1 - y**2 with the *output* y, not 1 - x**2",
        suspects=mistakes.on("Tanh.backward", x, grad_out),
    )


# --- softmax cross-entropy (5 points) ----------------------------------------


@pytest.mark.points(3)
@settings(max_examples=40)
@given(n=st.integers(1, 8), c=st.integers(2, 6), seed=SEEDS)
def test_cross_entropy_matches_torch(impl, n, c, seed):
    rng = Draw(seed)
    logits, labels = normal(rng, n, c, scale=3.0), rng.integers(0, c, size=n)
    with unchanged(logits, labels, names=["logits", "labels"]):
        loss, dlogits = impl.softmax_cross_entropy(logits, labels)
    want_loss, want_d = support.torch_cross_entropy(logits, labels)
    assert_close(
        scalar(loss, "loss"),
        np.array(want_loss),
        name=f"loss for a batch of {n}",
        hint="the loss is the *mean* over the batch of -log softmax(logits)[label]",
        suspects=mistakes.on("softmax_cross_entropy.loss", logits, labels),
    )
    assert_close(
        dlogits,
        want_d,
        name=f"dlogits for a batch of {n}, {c} classes",
        hint="dlogits = (softmax(logits) - one_hot(labels)) / N: the loss is a mean, so divide by N",
        suspects=mistakes.on("softmax_cross_entropy.dlogits", logits, labels),
    )


@pytest.mark.points(1)
@settings(max_examples=8)
@given(n=st.integers(1, 5), c=st.integers(2, 5), seed=SEEDS)
def test_cross_entropy_central_differences(impl, n, c, seed):
    rng = Draw(seed)
    logits, labels = normal(rng, n, c), rng.integers(0, c, size=n)
    _, dlogits = impl.softmax_cross_entropy(logits, labels)
    numeric = np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        plus, minus = logits.copy(), logits.copy()
        plus[idx] += EPS
        minus[idx] -= EPS
        numeric[idx] = (
            float(impl.softmax_cross_entropy(plus, labels)[0])
            - float(impl.softmax_cross_entropy(minus, labels)[0])
        ) / (2 * EPS)
    assert_close(
        dlogits,
        numeric,
        name="dlogits against central differences of your own loss",
        hint="your loss and your gradient disagree: is dlogits divided by the batch size like the loss?",
        **NUMERIC,
    )


@pytest.mark.points(1)
def test_cross_entropy_large_logits(impl, draw):
    logits, labels = normal(draw, 6, 4, scale=800.0), draw.integers(0, 4, size=6)
    logits[0, labels[0]] = 1000.0  # exp overflows at the label itself
    loss, dlogits = impl.softmax_cross_entropy(logits, labels)
    want_loss, want_d = support.torch_cross_entropy(logits, labels)
    hint = "subtract each row's max before exp()"
    assert_close(
        scalar(loss, "loss"),
        np.array(want_loss),
        name="loss for logits near 1000",
        hint=hint,
        suspects=mistakes.on("softmax_cross_entropy.loss", logits, labels),
    )
    assert_close(
        dlogits,
        want_d,
        name="dlogits for logits near 1000",
        hint=hint,
        suspects=mistakes.on("softmax_cross_entropy.dlogits", logits, labels),
    )


# --- the MLP (7 points) ------------------------------------------------------


mlp_case = support.mlp_case


def linear_layers(mlp, sizes):
    layers = list(mlp.layers)
    expected = 2 * len(sizes) - 3
    if len(layers) != expected:
        raise CheckFailure(
            f"MLP({sizes}).layers has {len(layers)} entries; expected {expected} "
            "(Linear, activation, ..., Linear)",
            hint="an activation after every Linear but the last",
        )
    return layers[0::2]


def loaded_mlp(impl, sizes, activation, rng):
    """The learner's MLP with random weights and non-zero biases of our choosing."""
    mlp_seed = int(rng.integers(0, 1000))
    mlp = impl.MLP(sizes, activation, seed=mlp_seed)
    Ws, bs = support.random_mlp_weights(sizes, rng.rng)
    for layer, W, b in zip(linear_layers(mlp, sizes), Ws, bs):
        layer.W, layer.b = W.copy(), b.copy()
    return mlp, Ws, bs, mlp_seed


@pytest.mark.points(3)
@settings(max_examples=30)
@given(case=mlp_case())
def test_mlp_matches_torch(impl, case):
    sizes, activation, n, seed = case
    rng = Draw(seed)
    mlp, Ws, bs, mlp_seed = loaded_mlp(impl, sizes, activation, rng)
    x, labels = normal(rng, n, sizes[0]), rng.integers(0, sizes[-1], size=n)
    args = (Ws, bs, x, labels, activation, mlp_seed)
    logits = mlp.forward(x)
    loss, dlogits = impl.softmax_cross_entropy(logits, labels)
    dx = mlp.backward(dlogits)
    want = support.torch_mlp(Ws, bs, x, labels, activation)
    where = f"MLP({sizes}, {activation!r}), batch of {n}"
    assert_close(logits, want["logits"], name=f"logits of {where}", hint="Linear, activation, ..., Linear")
    assert_close(
        scalar(loss, "loss"), want["loss"], name=f"loss of {where}", suspects=mistakes.on("MLP.loss", *args)
    )
    assert_close(
        dx,
        want["dx"],
        name=f"dx returned by backward of {where}",
        hint="run the layers in reverse",
        suspects=mistakes.on("MLP.dx", *args),
    )
    for k, layer in enumerate(linear_layers(mlp, sizes)):
        for what in ("dW", "db"):
            assert_close(
                getattr(layer, what),
                want[what][k],
                name=f"{what} of Linear layer {k} in {where}",
                hint=HINTS[what],
                suspects=mistakes.on(f"MLP.{what}", *args, k=k),
            )


@pytest.mark.points(1)
@settings(max_examples=5)
@given(case=mlp_case())
def test_mlp_central_differences(impl, case):
    sizes, activation, n, seed = case
    rng = Draw(seed)
    mlp, Ws, _, _ = loaded_mlp(impl, sizes, activation, rng)
    x, labels = normal(rng, n, sizes[0]), rng.integers(0, sizes[-1], size=n)
    first = linear_layers(mlp, sizes)[0]
    _, dlogits = impl.softmax_cross_entropy(mlp.forward(x), labels)
    mlp.backward(dlogits)
    analytic = np.array(first.dW, dtype=np.float64)
    numeric = np.zeros_like(Ws[0])
    for idx in np.ndindex(*Ws[0].shape):
        losses = []
        for sign in (1, -1):
            W = Ws[0].copy()
            W[idx] += sign * EPS
            first.W = W
            losses.append(float(impl.softmax_cross_entropy(mlp.forward(x), labels)[0]))
        numeric[idx] = (losses[0] - losses[1]) / (2 * EPS)
    first.W = Ws[0].copy()
    assert_close(
        analytic,
        numeric,
        name=f"dW of the first layer of MLP({sizes}, {activation!r}) against central differences",
        hint="the gradient must reach the first layer through every activation, in reverse order",
        **NUMERIC,
    )


@pytest.mark.points(1)
@settings(max_examples=10)
@given(case=mlp_case(), lr=st.sampled_from([0.01, 0.1, 0.5]))
def test_mlp_step_is_gradient_descent(impl, case, lr):
    sizes, activation, n, seed = case
    rng = Draw(seed)
    mlp, Ws, bs, mlp_seed = loaded_mlp(impl, sizes, activation, rng)
    x, labels = normal(rng, n, sizes[0]), rng.integers(0, sizes[-1], size=n)
    _, dlogits = impl.softmax_cross_entropy(mlp.forward(x), labels)
    mlp.backward(dlogits)
    mlp.step(lr)
    want = support.torch_mlp(Ws, bs, x, labels, activation)
    hint = "step(lr) moves against the gradient: W -= lr * dW, b -= lr * db"
    for k, layer in enumerate(linear_layers(mlp, sizes)):
        for what, before, grads in (("W", Ws, want["dW"]), ("b", bs, want["db"])):
            assert_close(
                getattr(layer, what),
                before[k] - lr * grads[k],
                name=f"{what} of layer {k} after step({lr})",
                hint=hint,
                suspects=mistakes.on(f"MLP.step.{what}", Ws, bs, x, labels, activation, mlp_seed, k=k, lr=lr),
            )


# fixed step budget: the reference reaches 95 % within 130-260 steps over 60 seeds
FIT_STEPS, FIT_LR, FIT_TARGET = 600, 0.5, 0.95


@pytest.mark.points(2)
@settings(max_examples=2)
@given(seed=st.integers(0, 10_000))
def test_mlp_learns_two_spirals(impl, seed):
    X, y = support.two_spirals(100, seed=seed)
    mlp = impl.MLP([2, 32, 32, 2], "relu", seed=seed)
    losses = []
    for _ in range(FIT_STEPS):
        loss, dlogits = impl.softmax_cross_entropy(mlp.forward(X), y)
        losses.append(float(loss))
        mlp.backward(dlogits)
        mlp.step(FIT_LR)
    accuracy = float((np.asarray(mlp.forward(X)).argmax(axis=1) == y).mean())
    if not accuracy >= FIT_TARGET:
        raise CheckFailure(
            f"two spirals (seed {seed}): {accuracy:.1%} training accuracy after {FIT_STEPS} steps of "
            f"gradient descent with lr {FIT_LR}, expected at least {FIT_TARGET:.0%} "
            f"(a straight line gets {support.linear_accuracy(X, y):.0%}); the loss went from "
            f"{losses[0]:.3f} to {losses[-1]:.3f}",
            hint="if the loss grows, a gradient has the wrong sign or scale; if it stalls, check the "
            "initialisation (He: std sqrt(2 / in_features)) and that step() updates every Linear",
        )
