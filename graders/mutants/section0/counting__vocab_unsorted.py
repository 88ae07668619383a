"""Mutant: the vocabulary lists the tokens in the order they first appear, not sorted.

Misconception: any order will do as long as each word has a column. But then the
columns depend on which document came first, and nothing (another run, scikit-learn,
a TF-IDF built on top) agrees on which column is which word.
"""


def bag_of_words(docs):
    vocab = []
    for doc in docs:
        for token in doc:
            if token not in vocab:
                vocab.append(token)
    column = {token: j for j, token in enumerate(vocab)}
    X = np.zeros((len(docs), len(vocab)), dtype=np.int64)
    for i, doc in enumerate(docs):
        for token in doc:
            X[i, column[token]] += 1
    return vocab, X
