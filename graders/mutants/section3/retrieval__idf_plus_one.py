"""Mutant: BM25 with Lucene's idf, ln(1 + (N - n + 0.5) / (n + 0.5)).

Misconception: "BM25's idf" is one formula. Lucene, Elasticsearch and bm25s add 1
inside the log so that it is never negative; rank_bm25's BM25Okapi (this exercise's
definition) does not, and floors the negative values instead. The rankings are close,
the scores are not.
"""


class BM25:
    def __init__(self, corpus, k1=1.5, b=0.75, epsilon=0.25):
        if not corpus or not any(corpus):
            raise ValueError("BM25: the corpus has no tokens")
        self.n_docs = len(corpus)
        self.lengths = [len(doc) for doc in corpus]
        self.avgdl = sum(self.lengths) / self.n_docs
        self.counts = [Counter(doc) for doc in corpus]
        doc_freq = Counter(word for counts in self.counts for word in counts)
        self.idf = {w: math.log(1 + (self.n_docs - n + 0.5) / (n + 0.5)) for w, n in doc_freq.items()}
        self.k1, self.b = k1, b

    def scores(self, query):
        out = np.zeros(self.n_docs)
        for word in query:
            if word not in self.idf:
                continue
            for i, counts in enumerate(self.counts):
                f = counts.get(word, 0)
                if f:
                    norm = self.k1 * (1 - self.b + self.b * self.lengths[i] / self.avgdl)
                    out[i] += self.idf[word] * f * (self.k1 + 1) / (f + norm)
        return out
