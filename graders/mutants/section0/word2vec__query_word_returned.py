"""Mutant: most_similar ranks every word, the query words included.

Misconception: the answer to king - man + woman is simply the nearest vector. It
usually is king itself (or woman), so gensim and the analogy benchmarks leave the
positive and negative words out of the answer.
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
    unit = E / np.linalg.norm(E, axis=1, keepdims=True)
    query = unit[pos].sum(axis=0) - unit[neg].sum(axis=0)
    query = query / np.linalg.norm(query)
    scores = unit @ query
    order = np.argsort(-scores, kind="stable")[:topn]  # the bug: the query words are not left out
    return [(vocab[int(i)], float(scores[i])) for i in order]
