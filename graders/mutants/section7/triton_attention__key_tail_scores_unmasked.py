"""Mutant: the last, partial key block is loaded with a mask (other=0.0), but the scores
of keys >= N are not set to -inf.

Misconception: "the masked load zeroes the missing keys, so they drop out". A zero key
gives a score of 0, not -inf: exp(0 - m) joins the running sum l_i (the values are 0, so
acc is untouched), and the output and lse come out too small. Causal attention hides
these keys anyway (j >= N > i), so only the non-causal case shows it, and only when N
is not a multiple of BLOCK_N.
"""

# A Triton kernel compiles from its source file, so this mutant patches the
# reference's text (llmkit.impl applies REFERENCE_PATCH before the module runs).
REFERENCE_PATCH = [
    (
        '            s = tl.where(cols[None, :] < N, s, float("-inf"))',
        "            s = s  # keys >= N score q . 0 = 0",
    ),
]
