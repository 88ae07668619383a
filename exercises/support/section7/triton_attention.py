"""Support for exercise 7.2 (Triton attention kernel): where the kernel runs, guarded
buffers that catch out-of-bounds loads and stores, the FLOP count and the figure.

The values oracle is exercise 7.1's ``attention_and_lse``, re-exported here.

Triton's interpreter (``TRITON_INTERPRET=1``, the CPU fallback) does not fault on an
out-of-bounds pointer, and a GPU often does not either. So tests hand the kernel
tensors that are views into the middle of larger allocations (with real, padded
strides): every input element outside the view is NaN, so an unmasked load of a
missing row poisons the result; every output element outside the view holds a
sentinel that must survive bitwise, so an unmasked store is seen; and the output
views start as NaN, so a row never stored is seen. The allocations reach far enough
past both ends that a stray tile cannot corrupt the test process's memory either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from llmkit.failures import CheckFailure
from llmkit.figures import Figure, new_figure, png
from llmkit.support import load_support
from llmkit.testing import as_plain_tensor, assert_close

attention_and_lse = load_support("section7/flash_attention.py").attention_and_lse  # 7.1's oracle

GUARD_ROWS = 16  # guard rows before and after each (batch, head)'s N rows
GUARD_COLS = 8  # extra columns after D in every row: the row stride is D + 8, not D
MARGIN_ROWS = 256  # guard rows before and after the whole allocation (a 128-row tile overshoots < 128)
OUTPUT_SENTINEL = -1234.0  # exact in float16, bfloat16 and float32


def device() -> str:
    """Where the kernel runs: the GPU when there is one, else the CPU through Triton's interpreter."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Guarded:
    """``view`` lives inside the larger allocation ``flat``: ``margin`` guard elements, a
    ``padded`` block holding ``view`` (GUARD_ROWS guard rows on both sides of each
    (batch, head)'s rows, GUARD_COLS guard columns after D), then ``margin`` more.
    ``before`` holds the bits of ``flat`` when the buffer was made."""

    flat: torch.Tensor
    view: torch.Tensor
    name: str
    padded: tuple[int, ...]
    margin: int
    before: torch.Tensor

    def guard_mask(self) -> torch.Tensor:
        inside = torch.zeros(self.flat.numel(), dtype=torch.bool, device=self.flat.device)
        index = torch.arange(self.flat.numel(), device=self.flat.device)
        strided = index.as_strided(self.view.shape, self.view.stride(), self.view.storage_offset())
        inside[strided.flatten()] = True
        return ~inside

    def where(self, flat_index: int) -> str:
        """Where an element of ``flat`` lies, in the view's own coordinates."""
        offset = flat_index - self.margin
        if offset < 0:
            return f"{-offset} elements before {self.name}'s first element"
        if offset >= math.prod(self.padded):
            return f"past the end of {self.name}'s last (batch, head)"
        b, h, row, *col = _unravel(offset, self.padded)
        spot = f"batch {b}, head {h}, row {row - GUARD_ROWS}" + (f", column {col[0]}" if col else "")
        return f"{spot} of {self.name}, whose shape is {tuple(self.view.shape)}"


def _unravel(offset: int, shape: tuple[int, ...]) -> list[int]:
    out = []
    for size in reversed(shape):
        out.append(offset % size)
        offset //= size
    return out[::-1]


def _bits(t: torch.Tensor) -> torch.Tensor:
    ints = {2: torch.int16, 4: torch.int32, 8: torch.int64}
    return t.detach().view(ints[t.element_size()])


def guarded(
    values: torch.Tensor, name: str, fill: float = math.nan, interior: float | None = None
) -> Guarded:
    """A copy of ``values`` ((B, H, N, D) or (B, H, N)) as a strided view into a larger
    buffer filled with ``fill``; ``interior`` (if given) then overwrites the view's
    elements (poison for outputs)."""
    batch, heads, n = values.shape[:3]
    cols = values.shape[3] if values.dim() == 4 else None
    row = 1 if cols is None else cols + GUARD_COLS
    padded = (batch, heads, n + 2 * GUARD_ROWS) + (() if cols is None else (row,))
    margin = MARGIN_ROWS * row
    flat = torch.full((margin + math.prod(padded) + margin,), fill, dtype=values.dtype, device=values.device)
    view = flat[margin : margin + math.prod(padded)].view(padded)[:, :, GUARD_ROWS : GUARD_ROWS + n]
    if cols is not None:
        view = view[..., :cols]
    view.copy_(values)
    if interior is not None:
        view.fill_(interior)
    return Guarded(flat, view, name, padded, margin, _bits(flat).clone())


def guarded_inputs(*tensors: torch.Tensor, names: str = "qkv") -> list[Guarded]:
    """q, k, v copied into NaN-guarded buffers."""
    return [guarded(t, name) for t, name in zip(tensors, names)]


def guarded_outputs(q: torch.Tensor) -> tuple[Guarded, Guarded]:
    """``out`` (q's shape and dtype) and ``lse`` ((B, H, N) float32) buffers: NaN inside,
    OUTPUT_SENTINEL around."""
    out = guarded(torch.zeros(q.shape, dtype=q.dtype, device=q.device), "out", OUTPUT_SENTINEL, math.nan)
    lse = torch.zeros(q.shape[:3], dtype=torch.float32, device=q.device)
    return out, guarded(lse, "lse", OUTPUT_SENTINEL, math.nan)


def check_guards(buffers, what: str) -> None:
    """The guards of every buffer hold their original bits; inputs (named q, k, v) are
    bitwise unchanged inside too."""
    for buffer in buffers:
        changed = _bits(buffer.flat) != buffer.before
        if buffer.name in ("q", "k", "v") and changed.any():
            if not (changed & buffer.guard_mask()).any():
                raise CheckFailure(
                    f"{what}: {buffer.name} was modified by the launch",
                    hint="the kernel only stores to Out and Lse; the caller's q, k, v stay unchanged",
                )
        changed &= buffer.guard_mask()
        if changed.any():
            first = int(changed.nonzero()[0])
            raise CheckFailure(
                f"{what}: {int(changed.sum())} elements outside {buffer.name} were overwritten "
                f"(out-of-bounds stores); the first lies at {buffer.where(first)}",
                hint="mask every store with the row index: tl.store(ptrs, x, mask=offs_m[:, None] < N) "
                "(and mask=offs_m < N for lse); rows >= N of the last query block do not exist",
            )


def attention_flops(batch: int, heads: int, n: int, head_dim: int, causal: bool) -> float:
    """Forward FLOPs: two N x N x D matrix products (4 B H N^2 D), halved when causal."""
    flops = 4.0 * batch * heads * n * n * head_dim
    return flops / 2 if causal else flops


def check_one_call(impl, draw) -> None:
    """One small causal float32 launch of the learner's kernel, checked against SDPA's: the generated
    ban test (``test_no_library_shortcuts``, llmkit.plugin.bans) makes it after its static
    scan, with banned calls trapped, so code that does nothing earns nothing there."""
    q, k, v = (draw.tensor(1, 2, 20, 16).to(device()) for _ in range(3))
    out, lse = impl.triton_attention(q, k, v, causal=True)
    want_out, want_lse = attention_and_lse(*(t.cpu().double() for t in (q, k, v)), True)
    assert_close(as_plain_tensor(out, "out").cpu().double(), want_out, name="out", rtol=1e-4, atol=1e-5)
    assert_close(as_plain_tensor(lse, "lse").cpu().double(), want_lse, name="lse", rtol=1e-5, atol=1e-4)


def figure() -> Figure:
    """The online softmax's running maximum and sum as key tiles stream through one program."""
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
    fig, axes = new_figure(9.5, 3.2, ncols=2)
    tiles = range(1, len(ms) + 1)
    axes[0].step(tiles, ms, where="post", marker="o")
    axes[0].set_title("running maximum m_i of one query row", fontsize=10)
    axes[1].step(tiles, ls, where="post", marker="o", color="#e8710a")
    axes[1].set_title("running sum l_i: rescaled when m_i jumps", fontsize=10)
    for ax in axes:
        ax.set_xlabel(f"key tiles seen (BLOCK_N = {block})")
    return png(fig), "The online softmax's running maximum and sum as key tiles stream through one program"
