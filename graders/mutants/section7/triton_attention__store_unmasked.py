"""Mutant: the stores of out and lse are not masked with row < N.

Misconception: "a masked load is enough; the extra rows of the last query block are
harmless". They are written past the end of the output (into another head's rows or
beyond the allocation); the interpreter does not fault, the guard regions catch it.
"""


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
    tl.store(o_ptrs, out.to(Out.dtype.element_ty))
    tl.store(Lse + off_b * stride_lb + off_h * stride_lh + offs_m * stride_ln, lse)
