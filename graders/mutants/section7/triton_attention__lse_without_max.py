"""Mutant: lse stored as log(l_i) (times ln 2 from log2), without the running maximum.

Misconception: l_i is "the sum of the exponentials", so its log is the logsumexp.
It is the sum of exp2(s - m_i): the logsumexp is (m_i + log2(l_i)) * ln 2.
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        "    lse = (m_i + tl.math.log2(l_i)) * 0.6931471805599453  # base-2 -> natural log: times ln(2)",
        "    lse = tl.math.log2(l_i) * 0.6931471805599453",
    ),
]
