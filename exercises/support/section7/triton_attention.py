"""Support for exercise 7.2 (Triton attention kernel): where the kernel runs, guarded
buffers that catch out-of-bounds loads and stores, the FLOP count and the figure.

The values oracle is exercise 7.1's ``attention_and_lse``, re-exported here.

Triton's interpreter (``TRITON_INTERPRET=1``, the CPU fallback) does not fault on an
out-of-bounds pointer, and a GPU often does not either. Under the interpreter,
llmkit.triton_bounds (imported here, and by a sandbox worker before learner code)
checks every masked-in address against the launch's tensors and raises a report
(:func:`bounds_checked` names the mistake). On a GPU the guards do it: tests hand the kernel
tensors that are views into the middle of larger allocations (with real, padded
strides): every input element outside the view is NaN, so an unmasked load of a
missing row poisons the result; every output element outside the view holds a
sentinel that must survive bitwise, so an unmasked store is seen; and the output
views start as NaN, so a row never stored is seen. The allocations reach far enough
past both ends that a stray tile cannot corrupt the test process's memory either.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from llmkit import triton_bounds  # importing it installs the interpreter's bounds check
from llmkit.failures import CheckFailure
from llmkit.figures import Figure, new_figure, png
from llmkit.support import load_support
from llmkit.testing import Misconception, Misconceptions, as_plain_tensor, assert_close, multihead_cases

_tiled = load_support("section7/flash_attention.py")  # 7.1's oracle and what its mistakes compute
attention_and_lse = _tiled.attention_and_lse

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


def _past_last_row(buffer: Guarded, flat_index: int) -> bool:
    """Whether an element of ``flat`` lies in the rows just after some (batch, head)'s last
    row (within a column of the view): where an unmasked store of a last, partial query
    block lands."""
    offset = flat_index - buffer.margin
    if offset < 0:
        return False
    row_length = buffer.padded[3] if len(buffer.padded) == 4 else 1
    rows_per_head = buffer.padded[2]
    row, col = divmod(offset, row_length)
    head, row = divmod(row, rows_per_head)
    n = rows_per_head - 2 * GUARD_ROWS
    if len(buffer.padded) == 4 and col >= buffer.view.shape[3]:
        return False
    if head >= math.prod(buffer.padded[:2]):  # past the last (batch, head): the margin after it
        return True
    return row - GUARD_ROWS >= n or (row < GUARD_ROWS and head > 0)


def check_guards(buffers, what: str) -> None:
    """The guards of every buffer hold their original bits; inputs (named q, k, v) are
    bitwise unchanged inside too. Stores into the rows after a head's last row are the
    misconception ``store_unmasked``."""
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
            where = changed.nonzero().flatten().tolist()
            message = (
                f"{what}: {len(where)} elements outside {buffer.name} were overwritten "
                f"(out-of-bounds stores); the first lies at {buffer.where(where[0])}"
            )
            hint = (
                "mask every store with the row index: tl.store(ptrs, x, mask=offs_m[:, None] < N) "
                "(and mask=offs_m < N for lse); rows >= N of the last query block do not exist"
            )
            if buffer.name in ("out", "lse") and all(_past_last_row(buffer, i) for i in where):
                raise MISCONCEPTIONS.failure("store_unmasked", message, hint=hint)
            raise CheckFailure(message, hint=hint)


@contextmanager
def bounds_checked(where: str):
    """Turn the interpreter's bounds report (an OutOfBoundsAccess here, or the CheckFailure
    a sandboxed worker's report becomes) into a failure that names the likely mistake."""
    try:
        yield
    except (triton_bounds.OutOfBoundsAccess, CheckFailure) as exc:
        found = triton_bounds.parse_report(str(exc))
        if not found:
            raise
        message = f"{where}: {exc}"
        if {("load", "K"), ("load", "V")} <= found:
            raise MISCONCEPTIONS.failure("key_tail_loads_unmasked", message) from None
        if ("load", "K") in found:
            raise MISCONCEPTIONS.failure("key_tail_k_loads_unmasked", message) from None
        if found <= {("store", "Out"), ("store", "Lse")}:
            raise MISCONCEPTIONS.failure("store_unmasked", message) from None
        raise CheckFailure(
            message, hint="mask every tl.load and tl.store of a tile that reaches past N"
        ) from None


def attention_flops(batch: int, heads: int, n: int, head_dim: int, causal: bool) -> float:
    """Forward FLOPs: two N x N x D matrix products (4 B H N^2 D), halved when causal."""
    flops = 4.0 * batch * heads * n * n * head_dim
    return flops / 2 if causal else flops


def check_one_call(impl, draw) -> None:
    """One small causal float32 launch of the learner's kernel, checked against SDPA's: the generated
    ban test (``test_no_library_shortcuts``, llmkit.plugin.bans) makes it after its static
    scan, with banned calls trapped, so code that does nothing earns nothing there."""
    q, k, v = (draw.tensor(1, 2, 32, 16).to(device()) for _ in range(3))  # whole blocks: no guards here
    out, lse = impl.triton_attention(q, k, v, causal=True)
    want_out, want_lse = attention_and_lse(*(t.cpu().double() for t in (q, k, v)), True)
    assert_close(as_plain_tensor(out, "out").cpu().double(), want_out, name="out", rtol=1e-4, atol=1e-5)
    assert_close(as_plain_tensor(lse, "lse").cpu().double(), want_lse, name="lse", rtol=1e-5, atol=1e-4)


# --- the cases the public tests and graders draw ----------------------------------


def attention_case(max_n=150, head_dims=(16, 32, 64), max_batch=2, max_heads=2):
    """((B, H, N, D), causal, sm_scale, seed): one launch. D among the head dims the
    interpreter runs (the wrapper also takes 128, on a GPU), sm_scale None or in [0.05, 1.5]."""
    return multihead_cases(
        max_batch=max_batch, max_heads=max_heads, max_n=max_n, head_dims=head_dims, sm_scales=(0.05, 1.5)
    )


def blocks_of(impl, q) -> tuple[int, int]:
    """(BLOCK_M, BLOCK_N) of the launch for ``q`` (the learner's launch_config; 32 x 16
    under the interpreter). The mistakes below depend on them."""
    try:
        block_m, block_n = (int(b) for b in tuple(impl.launch_config(q.shape[2], q.shape[3], q.dtype))[:2])
    except Exception:  # noqa: BLE001 - an odd launch_config: the interpreter's blocks
        return 32, 16
    return block_m, block_n


# --- what the mistakes compute ---------------------------------------------------------
#
# Each variant takes the tensors the kernel was given (any device, dtype and strides) and
# returns float64 on the CPU, what the tests compare. The kernel keeps its scores in base 2
# (s * sm_scale * log2(e), then exp2), which changes nothing in exact arithmetic: these are
# the natural-log forms of what each mistaken kernel computes, from torch's SDPA under
# another mask or scale, or from torch on the whole score matrix (7.1's helpers).


def _cpu64(*tensors):
    return [torch.as_tensor(t).detach().cpu().to(torch.float64) for t in tensors]


def _correct(q, k, v, causal=False, sm_scale=None):
    return attention_and_lse(*_cpu64(q, k, v), causal, sm_scale)


def _rows_and_keys(n):
    return torch.arange(n)[:, None], torch.arange(n)[None, :]


def causal_local_offset(q, k, v, causal=False, sm_scale=None, block_m=32, block_n=16):
    """On the diagonal blocks (keys diagonal .. diagonal + BLOCK_M - 1, diagonal = the query
    block's first row) key j counts iff its offset in its tile, j mod BLOCK_N, is <= i;
    keys left of the diagonal all count, keys right of it are never loaded."""
    if not causal:
        return _correct(q, k, v, causal, sm_scale)
    n = q.shape[2]
    i, j = _rows_and_keys(n)
    diagonal = (i // block_m) * block_m
    allowed = (j < diagonal) | ((j < diagonal + block_m) & (j % block_n <= i))
    return _tiled.attention_with_allowed(*_cpu64(q, k, v), allowed, sm_scale)


def causal_off_by_one(q, k, v, causal=False, sm_scale=None, block_m=32, block_n=16):
    """Query i sees keys 0..i-1; query 0 none: -inf - -inf = NaN in out and lse."""
    return _tiled.causal_off_by_one(*_cpu64(q, k, v), causal, sm_scale)


def key_tail_loads_unmasked(q, k, v, causal=False, sm_scale=None, block_m=32, block_n=16):
    """Keys >= N of a partial last key block are read from whatever lies past the tensor
    (NaN in the tests' guarded buffers) and their values multiplied by p = 0: 0 * NaN = NaN
    in every row whose key loop reaches that block. Their -inf scores keep lse right."""
    out, lse = _correct(q, k, v, causal, sm_scale)
    n = q.shape[2]
    if n % block_n:
        poisoned = torch.arange(n) >= ((n - 1) // block_m) * block_m if causal else torch.ones(n, dtype=bool)
        out = out.masked_fill(poisoned[:, None], math.nan)
    return out, lse


def key_tail_scores_unmasked(q, k, v, causal=False, sm_scale=None, block_m=32, block_n=16):
    """The (-N mod BLOCK_N) keys past N load as zeros and score 0 instead of -inf: the
    row's sum gains exp(0) per missing key (their values are 0): lse = log(exp(lse) + P),
    out shrinks by exp(lse_true - lse). Causal rows never see them (j >= N > i)."""
    out, lse = _correct(q, k, v, causal, sm_scale)
    missing = -q.shape[2] % block_n
    if causal or not missing:
        return out, lse
    wrong = torch.logaddexp(lse, torch.tensor(math.log(missing), dtype=torch.float64))
    return out * torch.exp(lse - wrong)[..., None], wrong


def exp_with_log2_scores(q, k, v, causal=False, sm_scale=None, block_m=32, block_n=16):
    """Scores scaled by sm_scale * log2(e) but exponentiated with exp: a softmax at scale
    sm_scale * log2(e). lse then comes out as ln2 * m + logsumexp(s') - m, s' those scores."""
    q64, k64, v64 = _cpu64(q, k, v)
    scale = (1.0 / math.sqrt(q.shape[3]) if sm_scale is None else sm_scale) / math.log(2)
    out, _ = attention_and_lse(q64, k64, v64, causal, scale)
    scores = _tiled._masked_scores(q64, k64, scale, _tiled._causal(q.shape[2]) if causal else None)
    m = scores.amax(dim=-1)
    return out, math.log(2) * m + torch.logsumexp(scores, dim=-1) - m


def flat_batch_head_offset(q, k, v, causal=False, sm_scale=None, block_m=32, block_n=16):
    """Program (b, h) reads from off_bh * stride_h, off_bh = b * H + h: the tensors seen
    with a batch stride of H * stride_h (right only when they are laid out that way)."""

    def flat(t):
        t = torch.as_tensor(t).detach()
        stride = t.stride()
        return t.as_strided(t.shape, (t.shape[1] * stride[1], *stride[1:]), t.storage_offset())

    return _correct(flat(q), flat(k), flat(v), causal, sm_scale)


def _outputs(variant):
    """{'out': ..., 'lse': ...} variants from one function returning (out, lse)."""
    return {
        "out": lambda *args, **kwargs: variant(*args, **kwargs)[0],
        "lse": lambda *args, **kwargs: variant(*args, **kwargs)[1],
    }


def _from_7_1(name):
    """7.1's variant ``name`` (its tile size is BLOCK_N), on the CPU in float64."""

    def variant(q, k, v, causal=False, sm_scale=None, block_m=32, block_n=16):
        return getattr(_tiled, name)(*_cpu64(q, k, v), causal, sm_scale, block_m, block_n)

    return variant


def _lse_changed(change):
    def variant(q, k, v, causal=False, sm_scale=None, block_m=32, block_n=16):
        q64, k64 = _cpu64(q, k)
        scores = _tiled._masked_scores(q64, k64, sm_scale, _tiled._causal(q.shape[2]) if causal else None)
        return change(scores)

    return variant


MISCONCEPTIONS = Misconceptions(
    "exercises/section7/README.md",
    Misconception(
        "store_unmasked",
        "stores not masked with row < N",
        "the last query block has rows >= N that do not exist: tl.store(..., mask=offs_m[:, None] < N) "
        "for out and mask=offs_m < N for lse, or they overwrite whatever follows the tensor",
        readme="Masks on the tails",
        # recognised by check_guards: the sentinel after a head's last row was overwritten
    ),
    Misconception(
        "key_tail_loads_unmasked",
        "the partial last key block loaded without a mask",
        "-inf scores do not make a missing key harmless: its value row is still loaded and "
        "multiplied by p = 0, and 0 * NaN (or whatever lies past the tensor) is NaN; load with "
        "mask=(start_n + offs_n < N)[:, None], other=0.0",
        readme="Masks on the tails",
        variants={"out": lambda *a, **kw: key_tail_loads_unmasked(*a, **kw)[0]},
    ),
    Misconception(
        "key_tail_k_loads_unmasked",
        "the last key block's keys loaded without a mask",
        "setting the scores of keys >= N to -inf hides their values from the softmax, not the "
        "load itself: the kernel still reads past K, which on a GPU is memory it does not own "
        "(a fault, or garbage a later change exposes); load with mask=(start_n + offs_n < N)[:, None], "
        "other=0.0",
        readme="Masks on the tails",
        # recognised by bounds_checked: the interpreter's bounds check saw loads past K only
    ),
    Misconception(
        "key_tail_scores_unmasked",
        "keys >= N score 0 instead of -inf",
        "a masked load gives the missing keys zeros, and q . 0 = 0 is a score like any other: "
        "set the scores of keys start_n + offs_n >= N to -inf before the max",
        readme="Masks on the tails",
        variants=_outputs(key_tail_scores_unmasked),
    ),
    Misconception(
        "causal_local_offset",
        "causal mask with the key's offset in its tile",
        "tl.arange(0, BLOCK_N) is the offset inside the key block; key j = start_n + offs_n "
        "is visible to query i = offs_m iff j <= i",
        readme="The causal diagonal in the kernel",
        variants=_outputs(causal_local_offset),
    ),
    Misconception(
        "causal_off_by_one",
        "the causal mask hides the diagonal",
        "query i sees keys 0..i, itself included: keep the score when j <= i, not only when j < i",
        readme="The causal diagonal in the kernel",
        variants=_outputs(causal_off_by_one),
    ),
    Misconception(
        "no_rescale_acc",
        "acc not rescaled when the maximum grows",
        "acc holds sums of exp2(s - m_old) * v: multiply it by alpha = exp2(m_old - m_new) "
        "before adding the new block, as you do for l_i",
        readme="Base 2 and the running statistics",
        variants=_outputs(_from_7_1("no_rescale_acc")),
    ),
    Misconception(
        "no_running_max",
        "exp2 of the raw scores",
        "without the running maximum exp2(s) overflows float32 once a score passes 128 in base 2 "
        "(88 in natural units), and inf / inf is NaN: keep m_i, subtract it, rescale when it grows",
        readme="Base 2 and the running statistics",
        variants=_outputs(
            lambda q, k, v, causal=False, sm_scale=None, block_m=32, block_n=16: _tiled.overflow_rows(
                *_cpu64(q, k, v), causal, sm_scale, dtype=torch.float32
            )
        ),
    ),
    Misconception(
        "no_final_normalisation",
        "out is acc, never divided by l_i",
        "the loop keeps the numerator (acc) and the denominator (l_i) apart; store acc / l_i[:, None]",
        readme="Base 2 and the running statistics",
        variants={"out": lambda *a, **kw: _from_7_1("no_final_normalisation")(*a, **kw)[0]},
    ),
    Misconception(
        "exp_with_log2_scores",
        "exp on scores already in base 2",
        "once the scores carry the factor log2(e), the softmax needs exp2 (tl.math.exp2) "
        "everywhere, for p and for alpha; or keep sm_scale alone and use tl.exp",
        readme="Base 2 and the running statistics",
        variants=_outputs(exp_with_log2_scores),
    ),
    Misconception(
        "sm_scale_ignored",
        "sm_scale dropped from the scores",
        "the scores are q . k * sm_scale (times log2(e) if you use exp2); the wrapper passes "
        "1/sqrt(D) when the caller gives None",
        readme="Base 2 and the running statistics",
        variants=_outputs(
            lambda q, k, v, causal=False, sm_scale=None, block_m=32, block_n=16: _correct(
                q, k, v, causal, 1.0
            )
        ),
    ),
    Misconception(
        "lse_log2",
        "lse stored in base 2",
        "with scores in base 2, m_i + log2(l_i) is the logsumexp over ln 2: store it times ln 2 "
        "(0.6931471805599453), the natural log the backward pass uses",
        readme="Base 2 and the running statistics",
        variants={"lse": _lse_changed(lambda s: torch.logsumexp(s, dim=-1) / math.log(2))},
    ),
    Misconception(
        "lse_without_max",
        "lse without the running maximum",
        "l_i was summed as exp2(s - m_i): the logsumexp is (m_i + log2(l_i)) * ln 2, not log2(l_i) * ln 2",
        readme="Base 2 and the running statistics",
        variants={"lse": _lse_changed(lambda s: torch.logsumexp(s, dim=-1) - s.amax(dim=-1))},
    ),
    Misconception(
        "flat_batch_head_offset",
        "(batch, head) found at off_bh * stride_h",
        "that assumes the batch stride is H times the head stride, which a transposed (B, N, H, D) "
        "layout breaks: offset by off_b * stride_b + off_h * stride_h, with the strides the kernel gets",
        readme="Strides, not shapes",
        variants=_outputs(flat_batch_head_offset),
    ),
)


def suspects(target: str, q, k, v, causal, sm_scale, blocks):
    """The mistakes' versions of ``target`` ("out" or "lse") for this launch; ``blocks`` is
    (BLOCK_M, BLOCK_N), :func:`blocks_of`."""
    return MISCONCEPTIONS.on(
        target, q, k, v, causal=causal, sm_scale=sm_scale, block_m=blocks[0], block_n=blocks[1]
    )


# --- the figure ------------------------------------------------------------------------

FIG_SHAPE = (1, 2, 45, 16)  # N = 45: a partial last query block and a partial last key block


def _launch_guarded(impl, q, k, v, causal):
    """The learner's kernel on guarded copies; returns out, lse, how many guard elements
    of out and lse the launch overwrote and the accesses the bounds check reported."""
    inputs = guarded_inputs(q, k, v)
    out, lse = guarded_outputs(q)
    reported = set()
    try:
        impl.triton_attention(*(b.view for b in inputs), causal=causal, out=out.view, lse=lse.view)
    except (triton_bounds.OutOfBoundsAccess, CheckFailure) as exc:
        reported = triton_bounds.parse_report(str(exc))
        if not reported:
            raise  # else out= and lse= hold what the launch wrote; the reported accesses were dropped
    overwritten = sum(int(((_bits(b.flat) != b.before) & b.guard_mask()).sum()) for b in (out, lse))
    got_out = as_plain_tensor(out.view).cpu().double()
    got_lse = as_plain_tensor(lse.view).cpu().double()
    return got_out, got_lse, overwritten, reported


def figure(impl) -> Figure:
    """``impl``'s kernel at N = 45 (float32, guarded buffers), causal and not: the launch
    grid coloured by each program's largest error against torch's SDPA, then the error of
    every output row and of every lse, with the query blocks' edges."""
    from matplotlib.colors import LogNorm

    gen = torch.Generator().manual_seed(5)
    b, h, n, d = FIG_SHAPE
    q, k, v = (torch.randn(FIG_SHAPE, generator=gen).to(device()) for _ in range(3))
    block_m, block_n = blocks_of(impl, q)
    runs = {}
    for causal in (False, True):
        out, lse, overwritten, reported = _launch_guarded(impl, q, k, v, causal)
        want_out, want_lse = _correct(q, k, v, causal)
        out_err = (out - want_out).abs().amax(dim=-1).nan_to_num(nan=math.inf)  # (B, H, N)
        lse_err = (lse - want_lse).abs().nan_to_num(nan=math.inf)
        runs[causal] = out_err, lse_err, overwritten, reported
    floor = 1e-9  # errors below it are drawn at it (float32 rounding is ~1e-7)

    fig, axes = new_figure(13.5, 4.0, ncols=3)
    blocks = -(-n // block_m)
    out_err = runs[True][0].reshape(b * h, n)
    grid = np.array(
        [
            [out_err[bh, s * block_m : (s + 1) * block_m].max().item() for s in range(blocks)]
            for bh in range(b * h)
        ]
    )
    shown = np.clip(np.nan_to_num(grid, posinf=1e3), floor, 1e3)
    image = axes[0].imshow(shown, norm=LogNorm(vmin=floor, vmax=1e3), cmap="RdYlGn_r", aspect="auto")
    for bh in range(b * h):
        for s in range(blocks):
            rows = f"rows {s * block_m}-{min((s + 1) * block_m, n) - 1}"
            axes[0].text(s, bh, f"{rows}\nmax err {grid[bh, s]:.1e}", ha="center", va="center", fontsize=7)
    axes[0].set_xticks(range(blocks))
    axes[0].set_yticks(range(b * h))
    axes[0].set_xlabel("program_id(0): query block")
    axes[0].set_ylabel("program_id(1): b * H + h")
    axes[0].set_title(f"Your causal launch: grid ({blocks}, {b * h}), BLOCK_M = {block_m}", fontsize=10)
    fig.colorbar(image, ax=axes[0], shrink=0.8, label="max |out - SDPA| per program")

    rows = np.arange(n)
    last = blocks * block_m  # the last query block ends here, past N
    panels = (
        (axes[1], 0, "|out - SDPA| per row (NaN at the top)"),
        (axes[2], 1, "|lse - logsumexp| per row"),
    )
    for ax, which, title in panels:
        for causal, colour in ((False, "#1a73e8"), (True, "#e8710a")):
            err = runs[causal][which].reshape(b * h, n).amax(dim=0).numpy()
            shown = np.clip(np.nan_to_num(err, posinf=1e3), floor, 1e3)
            ax.plot(rows, shown, marker=".", color=colour, label=f"causal={causal}")
        for edge in range(block_m, last, block_m):
            ax.axvline(edge - 0.5, color="#9aa0a6", lw=1)
        for edge in range(block_n, n, block_n):
            ax.axvline(edge - 0.5, color="#dadce0", lw=0.6, ls=":")
        ax.axvspan(
            n - 0.5, last - 0.5, color="#f1f3f4", hatch="//", ec="#dadce0", label="rows >= N: never stored"
        )
        ax.set_xlim(-1, last)
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, 2e3)
        ax.set_xlabel(f"query row (blocks of {block_m}; dotted: key blocks of {block_n})", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="center right")
    guards = "; ".join(f"causal={c}: {runs[c][2]}" for c in (False, True))
    overwritten = runs[False][2] + runs[True][2]
    stray = sorted(runs[False][3] | runs[True][3])
    title = (
        f"Guard elements around out and lse overwritten by your launches (stores past row N - 1): {guards}"
    )
    if stray:
        title += "\nOut-of-bounds accesses the interpreter dropped: " + ", ".join(
            f"tl.{op} {t}" for op, t in stray
        )
    fig.suptitle(title, fontsize=9, color="#d93025" if overwritten or stray else "black")
    return png(fig), (
        f"Your Triton kernel at (B, H, N, D) = {FIG_SHAPE}, float32: per-program and per-row error against "
        "torch's SDPA and a float64 logsumexp, causal and not"
    )
