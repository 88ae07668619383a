"""Support for exercise 1.2b (matrix backprop in numpy): oracles, data, the cases the
tests draw, the named misconceptions and the figure.

* :func:`two_spirals` — the deterministic toy set the MLP must learn (not
  linearly separable: a straight line gets about half of it right).
* :func:`torch_layer`, :func:`torch_cross_entropy`, :func:`torch_mlp` — forward values
  and gradients by torch float64 autograd, from weights given as numpy arrays.
* ``MISCONCEPTIONS`` — each variant is the same torch computation with one thing
  changed: a ``torch.autograd.Function`` whose backward makes the mistake, another
  reduction, or the mistaken formula written with torch operations.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import SEEDS, Misconception, Misconceptions, load_support


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


def he_init(in_features: int, out_features: int, seed: int) -> np.ndarray:
    """The initial W the stub's docstring prescribes for ``Linear(in_features, out_features, seed)``."""
    return np.random.default_rng(seed).normal(0.0, np.sqrt(2.0 / in_features), (in_features, out_features))


# --- oracles: torch float64 autograd ---------------------------------------------


def _t(a, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=grad)


def _labels(labels) -> torch.Tensor:
    return torch.as_tensor(np.asarray(labels), dtype=torch.int64)


def torch_mlp(
    weights,
    biases,
    x,
    labels,
    activation: str = "relu",
    *,
    act=None,
    loss_fn=None,
    backward_weights=None,
):
    """Logits, mean cross-entropy loss and gradients by torch float64 autograd.

    ``weights[k]`` has shape (in, out) and the layer computes ``h @ W + b``;
    an activation follows every layer but the last. Returns a dict of numpy
    arrays: logits, loss (0-d), dx, dW (list), db (list), dlogits.

    For the misconceptions: ``act`` replaces the activation function, ``loss_fn(logits,
    labels)`` the loss, and with ``backward_weights`` each layer's backward reads those
    weights instead of the ones the forward pass used.
    """
    xs = _t(x, grad=True)
    Ws = [_t(w, grad=True) for w in weights]
    bs = [_t(b, grad=True) for b in biases]
    act = act or (torch.relu if activation == "relu" else torch.tanh)
    h = xs
    for k, (W, b) in enumerate(zip(Ws, bs)):
        if backward_weights is None:
            h = h @ W + b
        else:
            h = _linear_stale_weight(h, W, b, _t(backward_weights[k]))
        if k < len(Ws) - 1:
            h = act(h)
    logits = h
    logits.retain_grad()
    loss = (loss_fn or F.cross_entropy)(logits, _labels(labels))
    loss.backward()
    return {
        "logits": logits.detach().numpy(),
        "loss": loss.detach().numpy(),
        "dx": xs.grad.numpy(),
        "dW": [W.grad.numpy() for W in Ws],
        "db": [b.grad.numpy() for b in bs],
        "dlogits": logits.grad.numpy(),
    }


def torch_layer(kind: str, x: np.ndarray, grad_out: np.ndarray, W=None, b=None, *, fn=None):
    """One layer's output and gradients by torch float64 autograd: kind is linear, relu or tanh.

    Returns (y, dx) or, for linear, (y, dx, dW, db) as numpy arrays. ``fn`` replaces
    the activation function (for the misconceptions).
    """
    xs = _t(x, grad=True)
    if kind == "linear":
        Wt, bt = _t(W, grad=True), _t(b, grad=True)
        y = xs @ Wt + bt
    else:
        y = (fn or (torch.relu if kind == "relu" else torch.tanh))(xs)
    y.backward(_t(grad_out))
    if kind == "linear":
        return y.detach().numpy(), xs.grad.numpy(), Wt.grad.numpy(), bt.grad.numpy()
    return y.detach().numpy(), xs.grad.numpy()


def torch_cross_entropy(logits: np.ndarray, labels: np.ndarray, *, reduction: str = "mean"):
    """(cross-entropy loss as a float, d loss / d logits) by torch float64 autograd."""
    z = _t(logits, grad=True)
    loss = F.cross_entropy(z, _labels(labels), reduction=reduction)
    loss.backward()
    return float(loss.detach()), z.grad.numpy()


# --- the mistakes, in torch --------------------------------------------------------


class _ReluMaskFromGrad(torch.autograd.Function):
    """relu whose backward passes the incoming gradient where *it* is > 0."""

    @staticmethod
    def forward(ctx, x):
        return torch.relu(x)

    @staticmethod
    def backward(ctx, grad):
        return torch.relu(grad)


# the same mistake as 1.2a's, where it is declared
_TanhGradFromInput = load_support("section1/scalar_autograd.py").TanhGradFromInput


def _linear_stale_weight(h, W, b, W_old):
    """h @ W + b whose gradient with respect to h flows through W_old instead of W (a W
    captured before it was replaced), by autograd: the two W_old terms cancel in value."""
    return h.detach() @ W + b + (h @ W_old - h.detach() @ W_old)


def _naive_softmax(z: torch.Tensor) -> torch.Tensor:
    exps = torch.exp(z)  # no max subtracted: inf for large logits
    return exps / exps.sum(dim=1, keepdim=True)


def _softmax_ce_from(softmax):
    """(loss, dlogits) as the docstring's formulas give them from a softmax ``softmax(z)``:
    mean of -log p[label], and (p - one_hot) / N."""

    def variant(logits, labels):
        z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
        probs, target = softmax(z), _labels(labels)
        loss = -torch.log(probs[torch.arange(len(z)), target]).mean()
        one_hot = F.one_hot(target, z.shape[1]).to(torch.float64)
        return np.array(float(loss)), ((probs - one_hot) / len(z)).numpy()

    return variant


_unstable_ce = _softmax_ce_from(_naive_softmax)
_ce_over_batch = _softmax_ce_from(lambda z: torch.softmax(z, dim=0))


class _FormulaLoss(torch.autograd.Function):
    """A loss whose value and gradient come from a ``(logits, labels) -> (loss, dlogits)``
    formula, so a mistaken cross-entropy can sit at the end of :func:`torch_mlp`."""

    @staticmethod
    def forward(ctx, z, labels, formula):
        loss, dlogits = formula(z.detach().numpy(), labels.numpy())
        ctx.save_for_backward(torch.as_tensor(dlogits))
        return torch.as_tensor(np.asarray(loss, dtype=np.float64))

    @staticmethod
    def backward(ctx, grad):
        (dlogits,) = ctx.saved_tensors
        return grad * dlogits, None, None


def _formula_loss(formula):
    return lambda z, labels: _FormulaLoss.apply(z, labels, formula)


def _ce(variant):
    """The loss and dlogits targets of a (logits, labels) -> (loss, dlogits) variant."""
    return {
        "softmax_cross_entropy.loss": lambda logits, labels: np.asarray(variant(logits, labels)[0]),
        "softmax_cross_entropy.dlogits": lambda logits, labels: variant(logits, labels)[1],
    }


def _summed_ce(logits, labels):
    loss, d = torch_cross_entropy(logits, labels, reduction="sum")
    return np.array(loss), d


def _mlp(*, step_sign: float = -1.0, db_scale: bool = False, stale: bool = False, **options):
    """The MLP targets (logits, loss, dx, dW, db and W, b after one step) of
    :func:`torch_mlp` with ``options``, step direction ``step_sign`` (-1: descent),
    the bias gradients divided by the batch size (``db_scale``), or backward reading
    the weights each Linear was initialised with (``stale``)."""

    def run(Ws, bs, x, labels, activation, seed):
        stale_weights = None
        if stale:
            stale_weights = [he_init(*np.shape(W), seed + k) for k, W in enumerate(Ws)]
        out = torch_mlp(Ws, bs, x, labels, activation, backward_weights=stale_weights, **options)
        if db_scale:
            out["db"] = [db / len(x) for db in out["db"]]
        return out

    def pick(what):
        def variant(Ws, bs, x, labels, activation, seed, k=None, lr=None):
            out = run(Ws, bs, x, labels, activation, seed)
            if what == "step.W":
                return np.asarray(Ws[k]) + step_sign * lr * out["dW"][k]
            if what == "step.b":
                return np.asarray(bs[k]) + step_sign * lr * out["db"][k]
            return out[what] if k is None else out[what][k]

        return variant

    return {f"MLP.{what}": pick(what) for what in ("logits", "loss", "dx", "dW", "db", "step.W", "step.b")}


def _mlp_with_activation(name: str, fn):
    """The MLP targets where the ``name`` activation ("relu" or "tanh") is ``fn``."""

    def variant_for(key):
        def variant(Ws, bs, x, labels, activation, seed, k=None, lr=None):
            targets = _mlp(act=fn if activation == name else None)
            return targets[key](Ws, bs, x, labels, activation, seed, k=k, lr=lr)

        return variant

    return {key: variant_for(key) for key in _mlp()}


README = "exercises/section1/README.md"

MISCONCEPTIONS = Misconceptions(
    README,
    Misconception(
        "bias_grad_averaged",
        "the bias gradient averaged over the batch",
        "b was added to every row, so every row's gradient adds up: db = grad_out.sum(axis=0) "
        "(the loss's 1/N is already inside grad_out)",
        readme="Linear: what backward sums and reads",
        variants={
            "Linear.db": lambda x, grad_out, W, b, seed: torch_layer("linear", x, grad_out, W, b)[3] / len(x),
            **_mlp(db_scale=True),
        },
    ),
    Misconception(
        "weight_cached_in_init",
        "backward reads a W kept from __init__",
        "step() and the tests replace layer.W: read self.W when backward runs, not a copy made earlier",
        readme="Linear: what backward sums and reads",
        variants={
            "Linear.dx": lambda x, grad_out, W, b, seed: torch_layer(
                "linear", x, grad_out, he_init(*np.shape(W), seed), b
            )[1],
            **_mlp(stale=True),
        },
    ),
    Misconception(
        "relu_mask_from_grad",
        "ReLU's mask taken from the gradient",
        "the gradient passes where the forward *input* was > 0, and it may have either sign there",
        readme="Activations: which array backward needs",
        variants={
            "ReLU.backward": lambda x, grad_out: torch_layer("relu", x, grad_out, fn=_ReluMaskFromGrad.apply)[
                1
            ],
            **_mlp_with_activation("relu", _ReluMaskFromGrad.apply),
        },
    ),
    Misconception(
        "tanh_grad_from_input",
        "tanh's derivative from the input",
        "d tanh(x)/dx = 1 - tanh(x)**2 = 1 - y**2 with the output y cached in forward, not 1 - x**2",
        readme="Activations: which array backward needs",
        variants={
            "Tanh.backward": lambda x, grad_out: torch_layer(
                "tanh", x, grad_out, fn=_TanhGradFromInput.apply
            )[1],
            **_mlp_with_activation("tanh", _TanhGradFromInput.apply),
        },
    ),
    Misconception(
        "cross_entropy_summed",
        "cross-entropy summed over the batch",
        "the loss is the mean over the N rows, so loss and dlogits carry a 1/N",
        readme="A mean, stable softmax cross-entropy",
        variants={
            **_ce(_summed_ce),
            **_mlp(loss_fn=lambda z, y: F.cross_entropy(z, y, reduction="sum")),
        },
    ),
    Misconception(
        "unstable_softmax",
        "softmax without subtracting the maximum",
        "exp(1000) is inf and inf / inf is NaN: subtract each row's max before exp()",
        readme="A mean, stable softmax cross-entropy",
        variants={**_ce(_unstable_ce), **_mlp(loss_fn=_formula_loss(_unstable_ce))},
    ),
    Misconception(
        "softmax_over_batch",
        "softmax normalised over the batch",
        "each row (one example) is a distribution over the classes: max, exp and sum along axis=1",
        readme="A mean, stable softmax cross-entropy",
        variants={
            **_ce(_ce_over_batch),
            **_mlp(loss_fn=_formula_loss(_ce_over_batch)),
        },
    ),
    Misconception(
        "step_ascends",
        "step() climbs the gradient",
        "the gradient points uphill, towards a larger loss: W -= lr * dW and b -= lr * db",
        readme="Gradient descent goes downhill",
        variants=_mlp(step_sign=1.0),
    ),
)


# --- cases the tests draw ----------------------------------------------------------

sizes = st.integers(1, 6)


@st.composite
def linear_case(draw_st):
    """``(n, in_features, out_features, seed)`` for one Linear layer and a batch."""
    return draw_st(sizes), draw_st(sizes), draw_st(sizes), draw_st(SEEDS)


@st.composite
def mlp_case(draw_st):
    """``(sizes, activation, batch size, seed)`` for a small MLP (at least two classes)."""
    layer_sizes = draw_st(st.lists(sizes, min_size=2, max_size=4))
    layer_sizes[-1] = max(layer_sizes[-1], 2)
    return layer_sizes, draw_st(st.sampled_from(["relu", "tanh"])), draw_st(sizes), draw_st(SEEDS)


def random_mlp_weights(layer_sizes, rng: np.random.Generator):
    """Weights (in, out) of scale 1/sqrt(in) and non-zero biases for every Linear."""
    Ws = [rng.normal(0.0, 1 / np.sqrt(a), (a, b)) for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
    return Ws, [rng.normal(0.0, 0.5, b) for b in layer_sizes[1:]]


# --- the figure: the learner's MLP learning the spirals -----------------------------


def figure(impl) -> Figure:
    """The decision regions of the learner's ``MLP([2, 32, 32, 2])`` on the two spirals
    at a few steps of training with their own forward, softmax_cross_entropy, backward
    and step, and its loss curve."""
    X, y = two_spirals(100, seed=0)
    mlp = impl.MLP([2, 32, 32, 2], "relu", seed=0)
    snapshots, total = (0, 40, 150, 600), 600
    grid = np.linspace(-1.25, 1.25, 90)
    gx, gy = np.meshgrid(grid, grid)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    panels, losses = [], []

    def snapshot(step: int) -> None:
        logits = np.asarray(mlp.forward(points), dtype=np.float64)
        p1 = np.exp(logits[:, 1] - np.logaddexp(logits[:, 0], logits[:, 1]))  # softmax, class 1
        accuracy = float((np.asarray(mlp.forward(X)).argmax(axis=1) == y).mean())
        panels.append((step, p1.reshape(gx.shape), accuracy))

    stopped = ""
    with np.errstate(all="ignore"):  # a wrong gradient may blow the weights up: drawn, not warned about
        for step in range(total + 1):
            if step in snapshots:
                snapshot(step)
            if step == total:
                break
            loss, dlogits = impl.softmax_cross_entropy(mlp.forward(X), y)
            losses.append(float(loss))
            if not np.isfinite(losses[-1]):
                snapshot(step)
                stopped = f"training stopped at step {step}:\nthe loss is {losses[-1]}"
                break
            mlp.backward(dlogits)
            mlp.step(0.5)

    fig, axes = new_figure(16.0, 3.6, ncols=len(snapshots) + 1)
    for ax, (step, p1, accuracy) in zip(axes, panels):
        image = ax.contourf(gx, gy, np.nan_to_num(p1, nan=0.5), levels=np.linspace(0, 1, 11), cmap="RdBu_r")
        for label, color in ((0, "#2166ac"), (1, "#b2182b")):
            ax.scatter(*X[y == label].T, s=7, c=color, edgecolors="black", linewidths=0.3)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"step {step}: {accuracy:.0%} right", fontsize=10)
    for ax in axes[len(panels) : len(snapshots)]:
        ax.axis("off")
        ax.text(
            0.5, 0.5, stopped, ha="center", va="center", color="#b3261e", fontsize=10, transform=ax.transAxes
        )
        stopped = ""
    fig.colorbar(image, ax=axes[: len(snapshots)], shrink=0.8, label="P(class 1)")
    loss_ax = axes[-1]
    loss_ax.plot(range(len(losses)), losses, color="#1a73e8")
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("step (lr 0.5)")
    loss_ax.set_title("your cross-entropy loss", fontsize=10)
    return png(fig), "Your MLP's decision regions on the two spirals as it trains, and its loss"
