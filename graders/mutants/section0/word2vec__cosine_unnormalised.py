"""Mutant: most_similar scores raw dot products of unnormalised vectors.

Misconception: "similarity is a dot product". Without normalising the rows of E (and
the query) the scores are not cosines: long vectors (often frequent words) win, and
the positive and negative words weigh by their lengths.
"""


def most_similar(E, vocab, positive, negative=(), topn=10):
    index = {word: i for i, word in enumerate(vocab)}
    if isinstance(positive, str):
        positive = [positive]
    if isinstance(negative, str):
        negative = [negative]
    pos = [index[w] for w in positive]
    neg = [index[w] for w in negative]
    E = np.asarray(E, dtype=np.float64)
    query = E[pos].sum(axis=0) - E[neg].sum(axis=0)  # the bug: no unit vectors anywhere
    scores = E @ query
    excluded = set(pos) | set(neg)
    order = np.argsort(-scores, kind="stable")
    best = [int(i) for i in order if int(i) not in excluded][:topn]
    return [(vocab[i], float(scores[i])) for i in best]
