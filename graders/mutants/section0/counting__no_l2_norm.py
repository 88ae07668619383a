"""Mutant: TF-IDF rows are tf * idf, never divided by their length.

Misconception: the normalisation is cosmetic. Without it a long document gets
large weights just for being long, and cosine similarities and the library's
values (norm="l2" by default) disagree.
"""


def tfidf(docs):
    vocab, counts = bag_of_words(docs)
    n_docs = counts.shape[0]
    df = (counts > 0).sum(axis=0)
    idf = np.log((1 + n_docs) / (1 + df)) + 1.0
    return vocab, counts * idf
