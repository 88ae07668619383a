"""Mutant: idf = ln(n / df), the textbook formula, without the smoothing.

Misconception: every definition of idf is the same. The kit (like scikit-learn's
default) uses ln((1 + n) / (1 + df)) + 1; the textbook form gives weight 0 to a word
found in every document, which wipes out documents made only of such words.
"""


def tfidf(docs):
    vocab, counts = bag_of_words(docs)
    n_docs = counts.shape[0]
    df = (counts > 0).sum(axis=0)
    idf = np.log(n_docs / df)
    X = counts * idf
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return vocab, X / np.where(norms == 0, 1.0, norms)
