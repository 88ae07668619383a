"""Mutant: each program finds its (batch, head) at off_bh * stride_h, as if the tensors
were (B * H, N, D).

Misconception: "batch and head together are one index". That holds only when the batch
stride is H times the head stride; q, k, v taken as the transposes of (B, N, H, D)
tensors (what a fused QKV projection gives) are not laid out that way, and every batch
after the first reads another batch's rows. The kernel is given both strides: use
off_b * stride_b + off_h * stride_h.
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        "        Q + off_b * stride_qb + off_h * stride_qh + offs_m[:, None] * stride_qn",
        "        Q + off_bh.to(tl.int64) * stride_qh + offs_m[:, None] * stride_qn",
    ),
    (
        "        K + off_b * stride_kb + off_h * stride_kh + offs_n[:, None] * stride_kn",
        "        K + off_bh.to(tl.int64) * stride_kh + offs_n[:, None] * stride_kn",
    ),
    (
        "        V + off_b * stride_vb + off_h * stride_vh + offs_n[:, None] * stride_vn",
        "        V + off_bh.to(tl.int64) * stride_vh + offs_n[:, None] * stride_vn",
    ),
    (
        "        + off_b * stride_ob\n        + off_h * stride_oh\n",
        "        + off_bh.to(tl.int64) * stride_oh\n",
    ),
    (
        "    tl.store(Lse + off_b * stride_lb + off_h * stride_lh + offs_m * stride_ln, lse, mask=rows_ok)",
        "    tl.store(Lse + off_bh.to(tl.int64) * stride_lh + offs_m * stride_ln, lse, mask=rows_ok)",
    ),
]
