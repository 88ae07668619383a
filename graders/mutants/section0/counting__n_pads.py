"""Mutant: sentences are padded with n <s> instead of n - 1.

Misconception: an n-gram model needs n start symbols. It needs n - 1 words of context
before the first word; the n-th <s> adds an n-gram that predicts <s> itself and
doubles the count of the all-<s> context.
"""


def count_ngrams(sentences, n):
    counts = Counter()
    for sentence in sentences:
        padded = [BOS] * n + list(sentence) + [EOS]
        counts.update(zip(*(padded[i:] for i in range(n))))
    return dict(counts)
