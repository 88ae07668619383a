"""Mutant: the scores are multiplied by log2(e) only; sm_scale is dropped.

Misconception: folding the exp2 constant into the scale and losing the softmax scale
(1/sqrt(D) by default) on the way.
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        "    qk_scale = sm_scale * 1.4426950408889634  # log2(e): exp(x) = exp2(x * log2(e))",
        "    qk_scale = 1.4426950408889634",
    ),
]
