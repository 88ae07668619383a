"""Mutant: the batch's perplexity is the mean of each sequence's perplexity.

Misconception: a batch metric is the average of the per-example metric. Perplexity
is exp of the average per-token loss: averaging per-sequence perplexities gives a
short (padded) sequence as much weight as a long one, and the mean of exps is larger
than the exp of the mean.
"""


def perplexity(logits, labels, ignore_index=-100):
    values = []
    for row in range(labels.shape[0]):
        total, count = _nll_sum_and_count(logits[row, :-1], labels[row, 1:], ignore_index)
        values.append(math.exp(total / count) if count else math.nan)
    return sum(values) / len(values)
