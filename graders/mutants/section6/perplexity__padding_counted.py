"""Mutant: the summed loss is divided by every label position, padding included.

Misconception: F.cross_entropy(..., reduction="sum") skips the ignored labels, so
dividing by labels.numel() looks like the same mean. The ignored labels add nothing
to the sum but still count in the denominator, so padding lowers the perplexity.
"""


def perplexity(logits, labels, ignore_index=-100):
    total, count = _nll_sum_and_count(logits[:, :-1], labels[:, 1:], ignore_index)
    return math.exp(total / labels[:, 1:].numel()) if count else math.nan
