"""Mutant: the stores of out and lse are not masked with row < N.

Misconception: "a masked load is enough; the extra rows of the last query block are
harmless". They are written past the end of the output (into another head's rows or
beyond the allocation); the interpreter does not fault, the guard regions catch it.
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        "    tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=rows_ok[:, None])",
        "    tl.store(o_ptrs, out.to(Out.dtype.element_ty))",
    ),
    (
        "    tl.store(Lse + off_b * stride_lb + off_h * stride_lh + offs_m * stride_ln, lse, mask=rows_ok)",
        "    tl.store(Lse + off_b * stride_lb + off_h * stride_lh + offs_m * stride_ln, lse)",
    ),
]
