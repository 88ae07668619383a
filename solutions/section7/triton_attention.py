"""Exercise 7.2 — a fused attention forward kernel in Triton (reference solution).

FlashAttention-2's forward pass: one program per (query block, batch x head). The
program loads its BLOCK_M queries once, walks over the keys/values BLOCK_N at a time
keeping a running row maximum ``m_i``, a running sum ``l_i`` and an unnormalised
output ``acc`` in registers, and writes ``out = acc / l_i`` and the natural-log
``lse`` once at the end.

Speed tricks (the Triton fused-attention tutorial's):

* scores are kept in base 2: ``s = (q . k) * sm_scale * log2(e)``, so the softmax
  uses ``exp2`` (one instruction on the GPU); ``lse`` is converted back to natural
  log only when it is stored;
* causal attention is split into the key blocks left of the diagonal (no mask, no
  bounds checks) and the diagonal block (causal mask and key bounds);
* on a GPU the tile sizes, warps and pipeline stages are autotuned for N >= 512;
  under Triton's interpreter (no GPU) one fixed configuration is used.

Not run on a GPU when written (the session had none): every launch configuration
here was compiled ahead of time for sm_90 (H100/H200; at most 177 KiB of shared
memory), and everything but the autotune path in :func:`_autotuned` runs, unchanged,
in the interpreter. ``benchmarks/gpu_check.sh`` runs the tests and the benchmark on
a GPU.
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
def _attention_inner(
    acc,
    l_i,
    m_i,
    q,
    k_ptrs,
    v_ptrs,
    offs_m,
    offs_n,
    start,
    stop,
    N,
    stride_kn,
    stride_vn,
    qk_scale,
    BLOCK_N: tl.constexpr,
    MASK_KEYS: tl.constexpr,
    CAUSAL_MASK: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):
    """Fold key blocks start, start + BLOCK_N, ... (< stop) into (acc, l_i, m_i).

    MASK_KEYS: the range may end in a partial block (keys >= N are not loaded and
    score -inf). CAUSAL_MASK: the range crosses the diagonal (key j > query i scores
    -inf). Scores are in base 2 (qk_scale includes log2(e))."""
    for start_n in tl.range(start, stop, BLOCK_N):
        cols = start_n + offs_n
        if MASK_KEYS:
            k = tl.load(k_ptrs + start_n * stride_kn, mask=(cols < N)[:, None], other=0.0)
        else:
            k = tl.load(k_ptrs + start_n * stride_kn)
        s = tl.dot(q, tl.trans(k), input_precision=INPUT_PRECISION) * qk_scale
        if MASK_KEYS:
            s = tl.where(cols[None, :] < N, s, float("-inf"))
        if CAUSAL_MASK:
            s = tl.where(cols[None, :] <= offs_m[:, None], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.math.exp2(m_i - m_new)  # rescales what was summed under the old maximum
        p = tl.math.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        if MASK_KEYS:
            v = tl.load(v_ptrs + start_n * stride_vn, mask=(cols < N)[:, None], other=0.0)
        else:
            v = tl.load(v_ptrs + start_n * stride_vn)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=INPUT_PRECISION)
        m_i = m_new
    return acc, l_i, m_i


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
    start_m = tl.program_id(0)
    off_bh = tl.program_id(1)
    off_b = (off_bh // H).to(tl.int64)  # 64-bit base offsets: large tensors overflow int32
    off_h = (off_bh % H).to(tl.int64)

    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, HEAD_DIM)
    rows_ok = offs_m < N

    q_ptrs = (
        Q + off_b * stride_qb + off_h * stride_qh + offs_m[:, None] * stride_qn + offs_d[None, :] * stride_qd
    )
    k_ptrs = (
        K + off_b * stride_kb + off_h * stride_kh + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd
    )
    v_ptrs = (
        V + off_b * stride_vb + off_h * stride_vh + offs_n[:, None] * stride_vn + offs_d[None, :] * stride_vd
    )
    q = tl.load(q_ptrs, mask=rows_ok[:, None], other=0.0)

    qk_scale = sm_scale * 1.4426950408889634  # log2(e): exp(x) = exp2(x * log2(e))
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    if CAUSAL:
        # Keys left of this block's first query are visible to every row: whole blocks,
        # all < N, no mask (BLOCK_M is a multiple of BLOCK_N). Then the diagonal block.
        diagonal = start_m * BLOCK_M
        acc, l_i, m_i = _attention_inner(
            acc, l_i, m_i, q, k_ptrs, v_ptrs, offs_m, offs_n, 0, diagonal, N,
            stride_kn, stride_vn, qk_scale, BLOCK_N, False, False, INPUT_PRECISION,
        )  # fmt: skip
        acc, l_i, m_i = _attention_inner(
            acc, l_i, m_i, q, k_ptrs, v_ptrs, offs_m, offs_n, diagonal, tl.minimum(diagonal + BLOCK_M, N), N,
            stride_kn, stride_vn, qk_scale, BLOCK_N, True, True, INPUT_PRECISION,
        )  # fmt: skip
    else:
        # Whole key blocks without bounds checks, then the partial last block (if any).
        full = (N // BLOCK_N) * BLOCK_N
        acc, l_i, m_i = _attention_inner(
            acc, l_i, m_i, q, k_ptrs, v_ptrs, offs_m, offs_n, 0, full, N,
            stride_kn, stride_vn, qk_scale, BLOCK_N, False, False, INPUT_PRECISION,
        )  # fmt: skip
        acc, l_i, m_i = _attention_inner(
            acc, l_i, m_i, q, k_ptrs, v_ptrs, offs_m, offs_n, full, N, N,
            stride_kn, stride_vn, qk_scale, BLOCK_N, True, False, INPUT_PRECISION,
        )  # fmt: skip

    out = acc / l_i[:, None]
    lse = (m_i + tl.math.log2(l_i)) * 0.6931471805599453  # base-2 -> natural log: times ln(2)
    o_ptrs = (
        Out
        + off_b * stride_ob
        + off_h * stride_oh
        + offs_m[:, None] * stride_on
        + offs_d[None, :] * stride_od
    )
    tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=rows_ok[:, None])
    tl.store(Lse + off_b * stride_lb + off_h * stride_lh + offs_m * stride_ln, lse, mask=rows_ok)


def launch_config(n: int, head_dim: int, dtype: torch.dtype) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) for one launch.

    BLOCK_M is always a multiple of BLOCK_N (the causal split relies on it), and
    both are at least 16 (``tl.dot``'s minimum). Under the interpreter: 32 x 16, so
    the tests' short sequences still span several blocks and a partial last one.
    On a GPU without autotuning: 128 x 64 for 16-bit inputs; float32 tiles take
    twice the shared memory, so 64 x 32.
    """
    if INTERPRET:
        return 32, 16, 1, 1
    if dtype == torch.float32:
        return 64, 32, 4, 2
    return 128, 64, 4 if head_dim <= 64 else 8, 3


AUTOTUNE_MIN_N = 512  # shorter sequences take the fixed launch_config (each new N re-tunes)
_TUNED: dict = {}


def _autotuned(kernel, head_dim: int, dtype: torch.dtype):
    """``kernel`` wrapped in ``triton.autotune`` (GPU only), cached per kernel object,
    head dim and dtype, so a kernel redefined after import is tuned too."""
    key = (kernel, head_dim, dtype)
    if key not in _TUNED:
        configs = [
            triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
            for bm, bn, w, s in [
                (128, 64, 4, 3),
                (128, 64, 8, 3),
                (128, 128, 8, 3),
                (128, 32, 4, 4),
                (64, 64, 4, 3),
                (64, 32, 4, 4),
            ]
            if dtype != torch.float32 or bm * bn <= 64 * 64
        ]
        _TUNED[key] = triton.autotune(configs, key=["N", "HEAD_DIM", "CAUSAL"])(kernel)
    return _TUNED[key]


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
    _check_inputs(q, k, v)
    batch, heads, n, head_dim = q.shape
    sm_scale = 1.0 / math.sqrt(head_dim) if sm_scale is None else float(sm_scale)
    if out is None:
        out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    if lse is None:
        lse = torch.empty((batch, heads, n), dtype=torch.float32, device=q.device)
    out = _check_output(out, "out", q.shape, q.dtype, q.device)
    lse = _check_output(lse, "lse", (batch, heads, n), torch.float32, q.device)

    kernel = _attention_forward_kernel  # looked up at call time: a redefined kernel is used
    args = (
        q, k, v, out, lse,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(), *lse.stride(),
        heads, n, sm_scale,
    )  # fmt: skip
    meta = {
        "HEAD_DIM": head_dim,
        "CAUSAL": bool(causal),
        "INPUT_PRECISION": "ieee" if q.dtype == torch.float32 else "tf32",
    }
    if not INTERPRET and n >= AUTOTUNE_MIN_N:
        tuned = _autotuned(kernel, head_dim, q.dtype)
        tuned[lambda c: (triton.cdiv(n, c["BLOCK_M"]), batch * heads)](*args, **meta)
    else:
        block_m, block_n, num_warps, num_stages = launch_config(n, head_dim, q.dtype)
        kernel[(triton.cdiv(n, block_m), batch * heads)](
            *args, **meta, BLOCK_M=block_m, BLOCK_N=block_n, num_warps=num_warps, num_stages=num_stages
        )
    return out, lse
