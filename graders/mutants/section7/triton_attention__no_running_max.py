"""Mutant: no running maximum: p = exp2(s) as it is, summed into l_i and acc.

Misconception: "the maximum is only there for numerical safety, and my scores are
small". The result is exact while every exp2 fits in float32, so small test inputs pass;
a score above 88 (128 in base 2) overflows to inf, and inf / inf is NaN.
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        '    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)',
        "    m_i = tl.zeros([BLOCK_M], dtype=tl.float32)  # stays 0: exp2(s - 0)",
    ),
    (
        "        m_new = tl.maximum(m_i, tl.max(s, 1))",
        "        m_new = m_i",
    ),
]
