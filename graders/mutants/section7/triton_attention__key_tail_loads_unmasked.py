"""Mutant: the last, partial key block is loaded without a mask; only its scores are masked.

Misconception: "the -inf scores hide keys >= N, so their loads need no mask". The
value rows past N are still multiplied by p = 0, and 0 * NaN (or 0 * inf, or whatever
lies past the tensor) is not 0.
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        "            k = tl.load(k_ptrs + start_n * stride_kn, mask=(cols < N)[:, None], other=0.0)",
        "            k = tl.load(k_ptrs + start_n * stride_kn)",
    ),
    (
        "            v = tl.load(v_ptrs + start_n * stride_vn, mask=(cols < N)[:, None], other=0.0)",
        "            v = tl.load(v_ptrs + start_n * stride_vn)",
    ),
]
