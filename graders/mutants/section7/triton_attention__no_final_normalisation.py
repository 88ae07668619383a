"""Mutant: out = acc, never divided by the running sum l_i.

Misconception: FlashAttention-2 defers the division to the end; forgetting it leaves
the unnormalised sum of exp(score - m) * v.
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        "    out = acc / l_i[:, None]",
        "    out = acc",
    ),
]
