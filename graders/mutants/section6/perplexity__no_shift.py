"""Mutant: perplexity scores logits[:, t] against labels[:, t], with no shift.

Misconception: logits and labels have the same shape (B, T), so position t of one
must go with position t of the other. But a causal model's logits at t are its guess
for the NEXT token: unshifted, the model is graded on copying the token it just read.
"""


def perplexity(logits, labels, ignore_index=-100):
    total, count = _nll_sum_and_count(logits, labels, ignore_index)
    return math.exp(total / count) if count else math.nan
