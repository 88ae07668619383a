"""Mutant: acc is not rescaled when the running maximum grows (l_i is).

Misconception: rescaling only the running sum. Everything accumulated before the new
maximum keeps the weight it had under the old one.
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        "        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=INPUT_PRECISION)",
        "        acc = tl.dot(p.to(v.dtype), v, acc, input_precision=INPUT_PRECISION)",
    ),
]
