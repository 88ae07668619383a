"""Mutant: the last key block's keys are loaded without a mask; the values keep theirs.

Misconception: "the -inf scores hide keys >= N, so loading them is harmless". The
output is right (their weights are exactly 0), but the kernel reads past K: memory it
does not own on a GPU. Only the interpreter's bounds check (llmkit.triton_bounds) sees it.
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        "            k = tl.load(k_ptrs + start_n * stride_kn, mask=(cols < N)[:, None], other=0.0)",
        "            k = tl.load(k_ptrs + start_n * stride_kn)",
    ),
]
