"""Exercise 7.2 — a fused attention forward kernel in Triton (FlashAttention-2).

You write the body of the Triton kernel ``_attention_forward_kernel`` below. The
Python launch wrapper ``triton_attention`` is written for you: it checks the inputs,
allocates ``out`` and ``lse``, picks the tile sizes and launches one program per
(query block, batch x head). When your kernel is written, delete the line marked
``DELETE THIS LINE`` in ``triton_attention``, then run

    pytest exercises/section7/test_triton_attention.py      (or: llmkit check 7.2)

No GPU? The tests run your kernel through Triton's interpreter on the CPU
(``TRITON_INTERPRET=1``, set by the test plugin before triton is imported; in your
own scripts set ``os.environ["TRITON_INTERPRET"] = "1"`` before ``import triton``).
The interpreter runs float32 and float16 (not bfloat16), slowly, so the tests use
short sequences. On a GPU the graders add bfloat16, longer sequences, D = 64 and
128, and a speed test against torch's FlashAttention backend.

Triton's interpreter does not fault on an out-of-bounds pointer (a GPU often does not
either), so the tests add a bounds check to it: every load and store your kernel makes
with its mask on must fall inside q, k, v, out or lse, or the test names the tensor,
the element and the program, even when -inf scores would have hidden what was read.
On a GPU the tests hand your kernel views into larger buffers instead: everything
outside q, k, v is NaN and everything outside out and lse holds a sentinel that must survive.

Banned (static scan and runtime trap): torch's attention (``F.scaled_dot_product_attention``
and its private ``torch._scaled_dot_product_*`` kernels), every softmax / log-softmax /
logsumexp (torch's, and ``tl.softmax``), and torch's matrix products (``torch.matmul``,
``@``, ``torch.bmm``, ``torch.einsum``): the attention is computed by your kernel, with
``tl.dot``. Everything in ``triton.language`` except ``tl.softmax`` is fine.
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
HEAD_DIMS = (16, 32, 64, 128)
DTYPES = (torch.float16, torch.bfloat16, torch.float32)


@triton.jit
def _attention_forward_kernel(
    Q,
    K,
    V,
    Out,
    Lse,
    stride_qb,
    stride_qh,
    stride_qn,
    stride_qd,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_kd,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_vd,
    stride_ob,
    stride_oh,
    stride_on,
    stride_od,
    stride_lb,
    stride_lh,
    stride_ln,
    H,
    N,
    sm_scale,
    HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):
    """One program: BLOCK_M query rows of one (batch, head). Write this body.

    Arguments:
        Q, K, V, Out: pointers to the first element of q, k, v, out, each (B, H, N, HEAD_DIM),
            all of the input dtype. Lse: pointer to lse, (B, H, N), float32.
        stride_*: the element strides of each tensor, in (batch, head, row, column) order
            (``stride_qn`` steps from one row of q to the next). Never assume contiguous
            tensors: the tests pass views with padded rows and transposed layouts.
            Element (b, h, i, d) of q lives at ``Q + b*stride_qb + h*stride_qh + i*stride_qn
            + d*stride_qd``.
        H: number of heads; N: sequence length (any N >= 1, not a multiple of the blocks).
        sm_scale: the score scale (the wrapper turns None into 1/sqrt(D)).
        HEAD_DIM: D, one of 16, 32, 64, 128 (a power of two: no masking along D).
        BLOCK_M, BLOCK_N: query and key tile sizes, powers of two >= 16, and BLOCK_M is
            a multiple of BLOCK_N.
        CAUSAL: query i sees keys 0..i only (the diagonal included).
        INPUT_PRECISION: pass it on to every ``tl.dot(..., input_precision=INPUT_PRECISION)``
            ("ieee" for float32 inputs, so that a GPU does not round them to tf32).

    The grid is (cdiv(N, BLOCK_M), B * H): ``tl.program_id(0)`` is the query block,
    ``tl.program_id(1)`` is b * H + h. The program computes, for its query rows
    i in [start, start + BLOCK_M) that are < N:

        out[b, h, i, :] = sum_j softmax_j(sm_scale * q_i . k_j) * v[b, h, j, :]
        lse[b, h, i]    = log(sum_j exp(sm_scale * q_i . k_j))      (natural log)

    over keys j < N (j <= i when CAUSAL), FlashAttention-2 style: load the query tile
    once, loop over key/value tiles of BLOCK_N rows with ``tl.dot``, keep a running row
    maximum m_i, a running sum l_i and an unnormalised output acc (float32, (BLOCK_M,
    HEAD_DIM)); when a tile raises the maximum, rescale l_i and acc first. At the end
    store acc / l_i (cast to Out's dtype: ``Out.dtype.element_ty``) and m_i + log(l_i).

    Tails: rows >= N and keys >= N do not exist. Mask the query load and both stores
    with ``i < N``, and in the last key tile mask the loads (``other=0.0``) and set the
    scores of keys >= N to -inf before the max. Causal: a key tile entirely left of the
    query tile needs no mask at all; only the tile(s) on the diagonal do (key j visible
    to query i iff j <= i, in global indices).

    Speed (graded on a GPU only): ``tl.math.exp2`` is faster than ``tl.exp``: multiply
    the scores by sm_scale * log2(e) = sm_scale * 1.4426950408889634 and use exp2
    throughout, then convert lse back to natural log (times ln 2) before storing it.
    Split the causal key loop into the unmasked blocks left of the diagonal and the
    masked diagonal block. Triton kernels may call other ``@triton.jit`` functions:
    a helper for the key loop with ``tl.constexpr`` flags for the masks keeps the
    body short.
    """
    pass  # your kernel body


def launch_config(n: int, head_dim: int, dtype: torch.dtype) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) for one launch.

    BLOCK_M is always a multiple of BLOCK_N (a causal split can rely on it), and
    both are at least 16 (``tl.dot``'s minimum). Under the interpreter: 32 x 16, so
    the tests' short sequences still span several blocks and a partial last one.
    On a GPU: 128 x 64 for 16-bit inputs; float32 tiles take twice the shared memory,
    so 64 x 32. For the speed points on a GPU you may tune these per (N, D, dtype), or
    wrap the kernel in ``triton.autotune`` (never under the interpreter: there the
    tests expect this fixed choice).
    """
    if INTERPRET:
        return 32, 16, 1, 1
    if dtype == torch.float32:
        return 64, 32, 4, 2
    return 128, 64, 4 if head_dim <= 64 else 8, 3


def _check_inputs(q, k, v) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if q.dim() != 4 or k.shape != q.shape or v.shape != q.shape:
        raise ValueError(
            "q, k, v must share one (B, H, N, D) shape, got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.dtype not in DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(f"q, k, v must share one dtype among {DTYPES}, got {q.dtype}, {k.dtype}, {v.dtype}")
    if INTERPRET and q.dtype == torch.bfloat16:
        raise ValueError("bfloat16 needs a GPU: Triton's interpreter computes tl.dot wrongly in bfloat16")
    if q.device != k.device or q.device != v.device:
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    if not INTERPRET and q.device.type != "cuda":
        raise ValueError(f"the kernel runs on a CUDA device (or set TRITON_INTERPRET=1), got {q.device}")
    batch, heads, n, head_dim = q.shape
    if head_dim not in HEAD_DIMS:
        raise ValueError(f"head dim D must be one of {HEAD_DIMS}, got {head_dim}")
    if min(batch, heads, n) < 1:
        raise ValueError(f"B, H and N must be at least 1, got (B, H, N, D) = {tuple(q.shape)}")


def _check_output(t, name: str, shape, dtype, device) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or t.shape != shape or t.dtype != dtype or t.device != device:
        got = f"{tuple(t.shape)} {t.dtype} on {t.device}" if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name} must be a {tuple(shape)} {dtype} tensor on {device}, got {got}")
    return t


def triton_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    sm_scale: float | None = None,
    *,
    out: torch.Tensor | None = None,
    lse: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact attention softmax(sm_scale * q @ k^T) @ v by one fused Triton kernel.

    Shapes and dtypes:
        q, k, v: (B, H, N, D), one dtype (float16, bfloat16 or float32; bfloat16 on a
            GPU only), D in {16, 32, 64, 128}, any N >= 1, any strides, on a CUDA
            device (or on the CPU with TRITON_INTERPRET=1).
        returns ``(out, lse)``:
            out: (B, H, N, D), q's dtype — equal to
                 ``F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=sm_scale)``;
            lse: (B, H, N), float32 — the natural-log logsumexp of each query row's
                 scaled scores (over keys j <= i when causal), as FlashAttention saves it
                 for the backward pass.

    Arguments:
        causal:   query i sees keys 0..i (the diagonal included).
        sm_scale: the score scale; None means 1 / sqrt(D).
        out, lse: optional preallocated outputs (right shape and dtype, any strides) that
            the kernel writes into and that are returned; the tests use them to catch
            out-of-bounds stores.

    Raises ValueError for wrong shapes, dtypes, head dims or devices.
    q, k and v are left unchanged. Forward pass only (no autograd).
    """
    _check_inputs(q, k, v)
    batch, heads, n, head_dim = q.shape
    sm_scale = 1.0 / math.sqrt(head_dim) if sm_scale is None else float(sm_scale)
    if out is None:
        out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    if lse is None:
        lse = torch.empty((batch, heads, n), dtype=torch.float32, device=q.device)
    out = _check_output(out, "out", q.shape, q.dtype, q.device)
    lse = _check_output(lse, "lse", (batch, heads, n), torch.float32, q.device)

    block_m, block_n, num_warps, num_stages = launch_config(n, head_dim, q.dtype)
    grid = (triton.cdiv(n, block_m), batch * heads)
    raise NotImplementedError("write the kernel body, then delete this line")  # DELETE THIS LINE
    _attention_forward_kernel[grid](
        q, k, v, out, lse,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(), *lse.stride(),
        heads, n, sm_scale,
        HEAD_DIM=head_dim,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        CAUSAL=bool(causal),
        INPUT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        num_warps=num_warps,
        num_stages=num_stages,
    )  # fmt: skip
    return out, lse
