"""Mutant: the causal mask on the diagonal block also hides the diagonal (j < i).

Misconception: "causal means the past only". Query i sees keys 0..i, itself included;
with a strict mask query 0 sees no key at all (its running max stays -inf and
exp2(-inf - -inf) is NaN) and every other query loses its own key.
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        '            s = tl.where(cols[None, :] <= offs_m[:, None], s, float("-inf"))',
        '            s = tl.where(cols[None, :] < offs_m[:, None], s, float("-inf"))',
    ),
]
