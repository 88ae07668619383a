"""Mutant: lse stored in base 2 (m_i + log2(l_i)), without the factor ln(2).

Misconception: the exp2 trick keeps m_i in base 2; the stored statistic must be
converted back to the natural log that the backward pass uses as exp(score - lse).
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        "    lse = (m_i + tl.math.log2(l_i)) * 0.6931471805599453  # base-2 -> natural log: times ln(2)",
        "    lse = m_i + tl.math.log2(l_i)",
    ),
]
