"""Mutant: tl.exp on scores already multiplied by log2(e).

Misconception: copying the tutorial's log2(e) scale but keeping the natural exp: the
softmax runs at temperature 1 / log2(e) (too sharp), and lse is off as well.
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        "        alpha = tl.math.exp2(m_i - m_new)  # rescales what was summed under the old maximum",
        "        alpha = tl.exp(m_i - m_new)",
    ),
    (
        "        p = tl.math.exp2(s - m_new[:, None])",
        "        p = tl.exp(s - m_new[:, None])",
    ),
]
