"""Exercise 0.1 — counting models: bag of words, TF-IDF and an n-gram language model.

Before neural networks, language was modelled by counting. You will write three
counting models, from the simplest up:

1. ``bag_of_words(docs)``: each document becomes a row of word counts.
2. ``tfidf(docs)``: the same counts, re-weighted so that words found in every
   document (``the``, ``a``) matter less than rare, telling words.
3. ``count_ngrams`` and ``NGramLM``: a language model that predicts the next word
   from the n - 1 words before it, by counting how often each word followed them.

Replace every ``raise NotImplementedError`` with your code, then run

    pytest exercises/section0/test_counting.py      (or: llmkit check 0.1)

Text arrives already split into tokens: a document or a sentence is a list of
strings such as ``["the", "cat", "sat"]``. Do not lowercase or split anything.

Banned here (a static scan and a runtime trap enforce it): the library versions of
what you are writing — scikit-learn's ``CountVectorizer``, ``TfidfVectorizer``,
``TfidfTransformer`` and ``sklearn.preprocessing.normalize``, and nltk's language
models (``nltk.lm``: ``MLE``, ``Lidstone``, ``Laplace``, ``NgramCounter``, its padding
helpers). Python's ``collections.Counter`` and ``defaultdict``, ``math`` and numpy are
all fine, and are all you need.
"""

from __future__ import annotations

import math  # noqa: F401  (math.log and math.exp for the perplexity)
from collections import Counter  # noqa: F401  (the fastest way to count in Python)

import numpy as np

# The three special tokens of the n-gram model.
BOS = "<s>"  # "beginning of sentence": padding on the left, never predicted
EOS = "</s>"  # "end of sentence": predicted once at the end of every sentence
UNK = "<unk>"  # "unknown": stands for every word the model never saw in training


# --- documents as count vectors ------------------------------------------------


def bag_of_words(docs: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """Count how often each word occurs in each document.

    docs: a list of documents; each document is a list of tokens (strings).

    Returns ``(vocab, X)``:
        vocab: every distinct token of all the documents, once, **sorted** (Python's
               ``sorted``), e.g. ``["cat", "sat", "the"]``.
        X:     a numpy array of dtype int64 and shape ``(len(docs), len(vocab))``;
               ``X[i, j]`` is how many times ``vocab[j]`` occurs in ``docs[i]``.

    An empty document gives a row of zeros. If every document is empty, vocab is
    ``[]`` and X has shape ``(len(docs), 0)``. This is what scikit-learn's
    ``CountVectorizer(analyzer=lambda doc: doc)`` computes (as a dense array).

    Example: ``bag_of_words([["the", "cat", "the"], ["a", "cat"]])`` returns
    ``(["a", "cat", "the"], array([[0, 1, 2], [1, 1, 0]]))``.
    """
    raise NotImplementedError


def tfidf(docs: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """TF-IDF weights: word counts scaled down for words that occur in many documents.

    Returns ``(vocab, X)`` with the same vocab as :func:`bag_of_words` and X a float64
    numpy array of shape ``(len(docs), len(vocab))``. With n = len(docs),
    tf[i, j] = the count of vocab[j] in docs[i], and df[j] = the number of documents
    that contain vocab[j] at least once:

        idf[j]  = ln((1 + n) / (1 + df[j])) + 1        (natural log: np.log)
        X[i, j] = tf[i, j] * idf[j], then each row divided by its Euclidean (l2)
                  length, so that every non-empty row has length 1.

    This is scikit-learn's ``TfidfVectorizer`` with its defaults (``smooth_idf=True``,
    ``norm="l2"``, ``sublinear_tf=False``). Libraries and textbooks disagree on the idf:
    the textbook ln(n / df) gives 0 to a word found in every document; here the "+1"s
    act as if one extra document contained every word once, and the final "+ 1" keeps
    every word's weight positive. An empty document stays a row of zeros (do not
    divide by a zero length).
    """
    raise NotImplementedError


# --- the n-gram language model ---------------------------------------------------


def count_ngrams(sentences: list[list[str]], n: int) -> dict[tuple[str, ...], int]:
    """How often each n-gram (window of n consecutive tokens) occurs in the padded sentences.

    Each sentence is first padded with n - 1 ``<s>`` on the left and one ``</s>`` on
    the right; then every window of n tokens is counted. With n = 3,
    ``["the", "cat"]`` becomes ``<s> <s> the cat </s>``, whose 3-grams are
    ``("<s>", "<s>", "the")``, ``("<s>", "the", "cat")`` and ``("the", "cat", "</s>")``:
    a sentence of L words gives L + 1 n-grams (one per predicted token). n = 1 counts
    single tokens as 1-tuples (``("the",)``), with no ``<s>`` at all. Windows never
    cross from one sentence into the next.

    Returns a plain ``dict`` (convert a Counter or defaultdict with ``dict(...)``)
    mapping each n-gram, a tuple of n strings, to its count (an int).

    Speed: the hidden tests count a large corpus and compare your time with
    ``collections.Counter(zip(...))`` over the same text; within 2x passes. A plain
    loop is fine, as long as each token costs a constant amount of work.
    """
    raise NotImplementedError


class NGramLM:
    """An n-gram language model with add-k (Lidstone) smoothing.

    It predicts each word from the n - 1 words before it (its *context*):

        P(word | context) = (count(context + word) + k) / (count(context) + k * V)

    where count(context + word) is the n-gram count (see :func:`count_ngrams`),
    count(context) is how often the context occurred *as a context*, i.e. the sum of
    the counts of all n-grams that start with it, and V = len(self.vocab). Adding k
    to every count ("smoothing") gives unseen words a small probability instead of 0;
    k = 1 is Laplace smoothing, k -> 0 gives the maximum-likelihood estimate
    count(context + word) / count(context).

    Conventions (the tests hold you to each one):

    * Padding: each sentence gets n - 1 ``<s>`` on the left and one ``</s>`` on the
      right, as in :func:`count_ngrams`. ``</s>`` is predicted like any word (the
      model learns where sentences end); ``<s>`` only ever appears in contexts.
    * Vocabulary: ``self.vocab`` is a sorted list of every word of the training
      sentences, plus ``</s>`` and ``<unk>``, but **not** ``<s>``. V = len(self.vocab).
    * Unknown words: a word not in the vocabulary (in ``prob``'s word, in a context
      or in the sentences given to ``perplexity``) is treated as ``<unk>``. In a
      context, ``<s>`` stays ``<s>``.

    Attributes set by ``fit`` (read by the tests): ``vocab`` (list of str, sorted).
    Keep whatever else you need (counts, context counts) as you like.
    """

    def __init__(self, n: int, k: float = 1.0):
        """n >= 1: the model's order (2 = bigrams: one word of context). k >= 0: the
        smoothing constant. An untrained model: nothing is counted yet."""
        raise NotImplementedError

    def fit(self, sentences: list[list[str]]) -> NGramLM:
        """Count the n-grams and contexts of ``sentences`` (a list of lists of str) and
        build the vocabulary. Calling fit again starts from scratch. Returns self."""
        raise NotImplementedError

    def prob(self, word: str, context=()) -> float:
        """P(word | context) as a Python float, with add-k smoothing (see the class).

        context: the words before ``word`` (a list or tuple of str, possibly empty);
        only its last n - 1 words matter. A shorter context is the start of a
        sentence: pad it on the left with ``<s>`` up to n - 1 words. With n = 1 the
        context is ignored entirely (careful: ``context[-0:]`` is the whole list).

        For every context the probabilities of the V words of ``self.vocab`` sum to 1,
        even a context never seen in training (each word then gets 1 / V). With k = 0
        only contexts seen in training are defined.
        """
        raise NotImplementedError

    def perplexity(self, sentences: list[list[str]]) -> float:
        """exp of the mean negative log-likelihood per predicted token (a float >= 1).

        Pad each sentence as in training and predict every token after the ``<s>``
        padding, ``</s>`` included (a sentence of L words predicts L + 1 tokens);
        words unseen in training count as ``<unk>``. Then

            perplexity = exp( -(1 / N) * sum over the N predicted tokens of ln P(token | context) )

        Use the *mean* over all N tokens of all sentences, not the sum. A perplexity
        of 10 means the model is as unsure as a fair choice among 10 words.
        """
        raise NotImplementedError

    def generate(self, context, n_words: int, rng: np.random.Generator) -> list[str]:
        """Sample up to ``n_words`` words, one at a time, each from P(. | the words before it).

        context: the words to continue (list of str, possibly empty: a new sentence).
        rng: a numpy random Generator (``np.random.default_rng(seed)``); draw every
        random choice from it, so the same seed gives the same words (e.g.
        ``rng.choice(len(self.vocab), p=probs)``).

        Returns the sampled words as a list of str. Stop early right after sampling
        ``</s>`` (it is the last item of the list then). ``<unk>`` may be sampled like
        any other word.
        """
        raise NotImplementedError
