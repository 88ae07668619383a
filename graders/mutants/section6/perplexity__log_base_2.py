"""Mutant: perplexity = 2 ** (mean cross-entropy), the cross-entropy being in nats.

Misconception: perplexity is "2 to the entropy", as textbooks write it with entropy in
bits. F.cross_entropy uses the natural log, so its mean must go back through exp();
2 ** nats mixes two bases and gives a smaller number.
"""


def perplexity(logits, labels, ignore_index=-100):
    total, count = _nll_sum_and_count(logits[:, :-1], labels[:, 1:], ignore_index)
    return 2.0 ** (total / count) if count else math.nan
