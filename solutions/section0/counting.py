"""Exercise 0.1 — counting models: bag of words, TF-IDF and an n-gram language model
(reference solution)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


# --- documents as count vectors ------------------------------------------------


def bag_of_words(docs: list[list[str]]) -> tuple[list[str], np.ndarray]:
    vocab = sorted({token for doc in docs for token in doc})
    column = {token: j for j, token in enumerate(vocab)}
    X = np.zeros((len(docs), len(vocab)), dtype=np.int64)
    for i, doc in enumerate(docs):
        for token, count in Counter(doc).items():
            X[i, column[token]] = count
    return vocab, X


def tfidf(docs: list[list[str]]) -> tuple[list[str], np.ndarray]:
    vocab, counts = bag_of_words(docs)
    n_docs = counts.shape[0]
    df = (counts > 0).sum(axis=0)  # in how many documents each word occurs
    idf = np.log((1 + n_docs) / (1 + df)) + 1.0  # smoothed: as if one more document held every word
    X = counts * idf
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return vocab, X / np.where(norms == 0, 1.0, norms)  # an empty document stays a row of zeros


# --- the n-gram language model ---------------------------------------------------


def count_ngrams(sentences: list[list[str]], n: int) -> dict[tuple[str, ...], int]:
    counts: Counter = Counter()
    start = [BOS] * (n - 1)
    for sentence in sentences:
        padded = start + list(sentence) + [EOS]
        # zip over n shifted views gives every window of n tokens, in C
        counts.update(zip(*(padded[i:] for i in range(n))))
    return dict(counts)


class NGramLM:
    def __init__(self, n: int, k: float = 1.0):
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        self.n, self.k = n, float(k)
        self.vocab: list[str] = []
        self.counts: dict[tuple[str, ...], int] = {}
        self.context_counts: dict[tuple[str, ...], int] = {}

    def _vocabulary(self, sentences) -> list[str]:
        return sorted({word for sentence in sentences for word in sentence} | {EOS, UNK})

    def fit(self, sentences: list[list[str]]) -> NGramLM:
        self.vocab = self._vocabulary(sentences)
        self._known = set(self.vocab)
        self.counts = count_ngrams(sentences, self.n)
        contexts: Counter = Counter()
        for gram, count in self.counts.items():
            contexts[gram[:-1]] += count
        self.context_counts = dict(contexts)
        return self

    def _lookup(self, word: str) -> str:
        return word if word in self._known else UNK

    def _context(self, context) -> tuple[str, ...]:
        m = self.n - 1
        if m == 0:  # careful: context[-0:] would be the whole context
            return ()
        words = [BOS] * m + [w if w == BOS else self._lookup(w) for w in context]
        return tuple(words[-m:])

    def prob(self, word: str, context=()) -> float:
        context = self._context(context)
        count = self.counts.get(context + (self._lookup(word),), 0)
        total = self.context_counts.get(context, 0)
        return (count + self.k) / (total + self.k * len(self.vocab))

    def perplexity(self, sentences: list[list[str]]) -> float:
        nll, predicted = 0.0, 0
        for sentence in sentences:
            padded = [BOS] * (self.n - 1) + list(sentence) + [EOS]
            for i in range(self.n - 1, len(padded)):
                nll -= math.log(self.prob(padded[i], padded[i - self.n + 1 : i]))
                predicted += 1
        return math.exp(nll / predicted)  # the mean over predicted tokens, then exp

    def generate(self, context, n_words: int, rng: np.random.Generator) -> list[str]:
        history, out = list(context), []
        for _ in range(n_words):
            probs = np.array([self.prob(w, history) for w in self.vocab])
            word = self.vocab[rng.choice(len(self.vocab), p=probs / probs.sum())]
            out.append(word)
            history.append(word)
            if word == EOS:
                break
        return out
