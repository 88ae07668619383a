"""Mutant: counts += Counter(...) once per sentence.

Misconception: += on a Counter is as cheap as update(). It is not: after adding,
Counter drops the counts <= 0, which rescans the whole counter, so every sentence
costs as much as all the distinct n-grams seen so far (quadratic overall).
"""


def count_ngrams(sentences, n):
    counts = Counter()
    start = [BOS] * (n - 1)
    for sentence in sentences:
        padded = start + list(sentence) + [EOS]
        counts += Counter(zip(*(padded[i:] for i in range(n))))
    return dict(counts)
