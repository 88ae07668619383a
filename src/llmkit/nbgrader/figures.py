"""One picture per exercise for its notebook, drawn when the course is built.

Each figure is computed from torch built-ins, the kit's oracles or plain arithmetic,
never from the reference solution, and is embedded in the notebook as a PNG
attachment (no separate file travels with the assignment). Matplotlib's object API
is used directly, so building a course changes no global plotting state.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import torch

Figure = tuple[bytes, str]  # (PNG bytes, alt text / caption)
DPI = 90


def _new(width: float, height: float, ncols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols)
    return fig, axes


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def scalar_autograd() -> Figure:
    a = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-0.5, dtype=torch.float64, requires_grad=True)
    e = a * b
    d = e + a
    out = torch.tanh(d)
    for t in (e, d):
        t.retain_grad()
    out.backward()
    nodes = {
        "a": (0.0, 1.0, a.item(), a.grad.item()),
        "b": (0.0, 0.0, b.item(), b.grad.item()),
        "e = a·b": (1.4, 0.5, e.item(), e.grad.item()),
        "d = e + a": (2.8, 1.0, d.item(), d.grad.item()),
        "L = tanh(d)": (4.2, 1.0, out.item(), 1.0),
    }
    edges = [
        ("a", "e = a·b"),
        ("b", "e = a·b"),
        ("e = a·b", "d = e + a"),
        ("a", "d = e + a"),
        ("d = e + a", "L = tanh(d)"),
    ]
    fig, ax = _new(8.5, 3.0)
    for src, dst in edges:
        (x0, y0, *_), (x1, y1, *_) = nodes[src], nodes[dst]
        ax.annotate(
            "", xy=(x1 - 0.45, y1), xytext=(x0 + 0.45, y0), arrowprops=dict(arrowstyle="->", color="0.4")
        )
    for name, (x, y, value, grad) in nodes.items():
        ax.text(
            x, y, f"{name}\ndata {value:+.3f}\ngrad {grad:+.3f}", ha="center", va="center", fontsize=9,
            bbox=dict(boxstyle="round", fc="#e8f0fe" if name in "ab" else "#fef3e0", ec="0.5"),
        )  # fmt: skip
    ax.text(
        0.0, -0.6, "a feeds two nodes: its grad is the sum of both paths, (b + 1)·(1 - L²)",
        ha="left", fontsize=9, color="#b3261e",
    )  # fmt: skip
    ax.set_xlim(-0.7, 4.9)
    ax.set_ylim(-0.9, 1.6)
    ax.axis("off")
    ax.set_title("Forward values and backward gradients of L = tanh(a·b + a)", fontsize=11)
    return _png(fig), "A small computation graph with each node's value and gradient"


def numpy_backprop() -> Figure:
    from llmkit.oracles.numpy_backprop import linear_accuracy, two_spirals

    X, y = two_spirals(200)
    fig, ax = _new(4.8, 4.4)
    for label, color in ((0, "#1a73e8"), (1, "#e8710a")):
        ax.scatter(*X[y == label].T, s=10, c=color, label=f"class {label}")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(
        f"The two spirals: the best straight line gets {linear_accuracy(X, y):.0%} right;\n"
        "your MLP must reach 95 %", fontsize=10,
    )  # fmt: skip
    return _png(fig), "The two-spirals data set, two interleaved classes"


def lstm() -> Figure:
    torch.manual_seed(0)
    steps, hidden = 40, 6
    x = torch.zeros(steps, 1, 3)
    x[3] = 2.0  # one input pulse, then silence
    fig, axes = _new(9.0, 3.0, ncols=2)
    for ax, forget_bias in zip(axes, (0.0, 3.0)):
        cell = torch.nn.LSTMCell(3, hidden)
        with torch.no_grad():
            cell.bias_ih[hidden : 2 * hidden] += forget_bias  # the forget gate's slice (i, f, g, o)
            h, c, trace = torch.zeros(1, hidden), torch.zeros(1, hidden), []
            for t in range(steps):
                h, c = cell(x[t], (h, c))
                trace.append(c[0].clone())
        ax.plot(torch.stack(trace).numpy())
        ax.axvline(3, color="0.6", ls=":")
        ax.set_xlabel("time step")
        ax.set_title(f"cell state c per unit, forget-gate bias {forget_bias:g}", fontsize=10)
    axes[0].set_ylabel("c")
    return _png(fig), "LSTM cell state after one input pulse, with a small and a large forget-gate bias"


def bpe() -> Figure:
    from llmkit.oracles import bpe as oracle

    text = oracle.synthetic_corpus(20_000, seed=1, lexicon_size=400)
    vocab, merges = oracle.train_bpe(text, 256 + 300)
    counts = [0, 10, 25, 50, 100, 150, 200, 300]
    per_token = [
        len(text.encode("utf-8")) / len(oracle.encode_with_merges(text, vocab, merges[:k])) for k in counts
    ]
    fig, axes = _new(9.0, 3.2, ncols=2)
    axes[0].plot(counts, per_token, marker="o")
    axes[0].set_xlabel("number of merges learned")
    axes[0].set_ylabel("bytes per token")
    axes[0].set_title("Each merge shortens the encoded text", fontsize=10)
    first = [(vocab[256 + i]).decode("utf-8", "replace").replace(" ", "␣") for i in range(12)]
    axes[1].barh(range(12)[::-1], [len(vocab[256 + i]) for i in range(12)], color="#34a853")
    axes[1].set_yticks(range(12)[::-1], [f"{i}: {t!r}" for i, t in enumerate(first)], fontsize=8)
    axes[1].set_xlabel("token length in bytes")
    axes[1].set_title("The first 12 merges (rank: token)", fontsize=10)
    return _png(fig), "Compression as BPE merges are learned, and the first merged tokens"


def attention() -> Figure:
    torch.manual_seed(3)
    q, k = torch.randn(8, 16), torch.randn(8, 16)
    scores = q @ k.T / math.sqrt(16)
    causal = torch.ones(8, 8, dtype=torch.bool).tril()
    padding = torch.ones(8, 8, dtype=torch.bool)
    padding[:, 6:] = False  # the last two keys are padding
    panels = [
        ("no mask", scores),
        ("causal: query i sees keys 0..i", scores.masked_fill(~causal, float("-inf"))),
        ("padding: keys 6, 7 hidden", scores.masked_fill(~padding, float("-inf"))),
    ]
    fig, axes = _new(10.0, 3.4, ncols=3)
    for ax, (title, s) in zip(axes, panels):
        image = ax.imshow(torch.softmax(s, dim=-1).numpy(), vmin=0, vmax=1, cmap="viridis")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("key")
    axes[0].set_ylabel("query")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight (each row sums to 1)")
    return _png(fig), "Attention weights without a mask, with a causal mask and with a padding mask"


def lora() -> Figure:
    d = 4096
    ranks = [1, 2, 4, 8, 16, 32, 64]
    fig, ax = _new(7.0, 3.4)
    ax.bar([str(r) for r in ranks], [r * 2 * d for r in ranks], color="#1a73e8", label="LoRA: r·(in + out)")
    ax.axhline(d * d, color="#b3261e", ls="--", label=f"full fine-tuning: {d}·{d} = {d * d / 1e6:.1f} M")
    ax.set_yscale("log")
    ax.set_xlabel("rank r")
    ax.set_ylabel("trainable parameters")
    ax.set_title(f"Trainable parameters for one {d} × {d} projection", fontsize=10)
    ax.legend(fontsize=8, loc="center right")
    return _png(fig), "Trainable parameters of LoRA by rank against full fine-tuning"


def _tile_map(ax, tiles: int, title: str) -> None:
    from matplotlib.colors import ListedColormap

    grid = np.zeros((tiles, tiles))
    for i in range(tiles):
        for j in range(tiles):
            grid[i, j] = 2 if j < i else (1 if j == i else 0)
    ax.imshow(grid, cmap=ListedColormap(["#f1f3f4", "#fbbc04", "#34a853"]), vmin=0, vmax=2)
    ax.set_xticks(range(tiles))
    ax.set_yticks(range(tiles))
    ax.set_xlabel("key tile")
    ax.set_ylabel("query tile")
    ax.set_title(title, fontsize=10)
    ax.text(tiles - 1, 0, "skipped", ha="right", va="top", fontsize=8)
    ax.text(0, tiles - 1, "no mask", ha="left", va="bottom", fontsize=8, color="white")


def flash_attention() -> Figure:
    fig, axes = _new(9.5, 3.6, ncols=2)
    _tile_map(axes[0], 8, "Causal: tiles under the diagonal need no mask,\nthe diagonal (yellow) does")
    n = np.array([512, 1024, 2048, 4096, 8192])
    block, bytes_per = 64, 4
    axes[1].plot(n, n * n * bytes_per / 2**20, marker="o", label="naive: the N × N scores")
    axes[1].plot(n, 3 * n * block * bytes_per / 2**20, marker="o", label=f"tiled: a few N × {block} tiles")
    axes[1].set_xscale("log", base=2)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("sequence length N")
    axes[1].set_ylabel("MiB per head (float32)")
    axes[1].set_title("Memory for the scores", fontsize=10)
    axes[1].legend(fontsize=8)
    return _png(fig), "Which score tiles causal attention computes, and the memory tiling saves"


def triton_attention() -> Figure:
    torch.manual_seed(7)
    scores = torch.randn(256, dtype=torch.float64) * 2.0
    scores[150] = 9.0  # a late key that raises the maximum
    block = 32
    m, s, ms, ls = -math.inf, 0.0, [], []
    for start in range(0, 256, block):
        tile = scores[start : start + block]
        new_m = max(m, tile.max().item())
        s = s * math.exp(m - new_m) + torch.exp(tile - new_m).sum().item()
        m = new_m
        ms.append(m)
        ls.append(s)
    fig, axes = _new(9.5, 3.2, ncols=2)
    tiles = range(1, len(ms) + 1)
    axes[0].step(tiles, ms, where="post", marker="o")
    axes[0].set_title("running maximum m_i of one query row", fontsize=10)
    axes[1].step(tiles, ls, where="post", marker="o", color="#e8710a")
    axes[1].set_title("running sum l_i: rescaled when m_i jumps", fontsize=10)
    for ax in axes:
        ax.set_xlabel(f"key tiles seen (BLOCK_N = {block})")
    return _png(fig), "The online softmax's running maximum and sum as key tiles stream through one program"


FIGURES: dict[str, Callable[[], Figure]] = {
    "1.2a": scalar_autograd,
    "1.2b": numpy_backprop,
    "1.3": lstm,
    "2.1": bpe,
    "2.3": attention,
    "5.1": lora,
    "7.1": flash_attention,
    "7.2": triton_attention,
}


def figure_for(exercise_id: str) -> Figure | None:
    """The exercise's figure, or None if it has none yet (the builder then refuses)."""
    draw = FIGURES.get(exercise_id)
    return draw() if draw else None
