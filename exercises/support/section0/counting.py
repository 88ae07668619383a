"""Support for exercise 0.1 (counting models): what its public tests, graders, notebook
and ``llmkit show`` share. It ships to learners, so nothing here solves the exercise.

* Oracles built on libraries: scikit-learn's ``CountVectorizer`` / ``TfidfVectorizer``
  (identity analyzer) for the bag of words and TF-IDF, nltk's ``NgramCounter`` for the
  n-gram counts and nltk's ``Lidstone`` model for add-k probabilities. They are banned in
  the learner's module, and calling them from there is caught by the runtime trap.
* Text the kit makes itself (seeded, nothing downloaded): the hypothesis strategies the
  public tests and graders both draw from (:func:`documents`, :func:`corpora`), a
  small Markov source with a known entropy rate (:class:`MarkovSource`), and a
  Zipf-distributed corpus of any size for the speed grader and the benchmark.
* :data:`MISCONCEPTIONS`: the known mistakes a failed check names; their variants come
  from the library oracles with one setting changed, or from closed forms over nltk's
  counts.
* :func:`check_one_call` (the generated ban test's checked call) and :func:`figure`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import Misconception, Misconceptions, assert_close, check_equal

BOS, EOS, UNK = "<s>", "</s>", "<unk>"

# --- bag of words and TF-IDF: scikit-learn -----------------------------------------


def _vectorizer(cls, **options):
    # analyzer=list: the documents are already token lists, used as they are (no
    # lowercasing, no splitting); token_pattern=None silences the "unused" warning.
    return cls(analyzer=list, token_pattern=None, **options)


def bag_of_words(docs: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """scikit-learn's ``CountVectorizer`` on token lists, as a dense int64 array.
    All-empty documents (sklearn raises "empty vocabulary") give ``([], (n, 0))``."""
    from sklearn.feature_extraction.text import CountVectorizer

    if not any(docs):
        return [], np.zeros((len(docs), 0), dtype=np.int64)
    vectorizer = _vectorizer(CountVectorizer)
    X = vectorizer.fit_transform(docs).toarray().astype(np.int64)
    return [str(t) for t in vectorizer.get_feature_names_out()], X


def tfidf(docs: list[list[str]], *, smooth_idf: bool = True, norm: str | None = "l2", idf_shift: float = 0.0):
    """scikit-learn's ``TfidfVectorizer`` on token lists (defaults: smoothed idf, l2 rows),
    as ``(vocab, dense float64 array)``. ``idf_shift`` is added to the fitted idf (the
    misconceptions use it). All-empty documents give ``([], (n, 0))``."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not any(docs):
        return [], np.zeros((len(docs), 0), dtype=np.float64)
    vectorizer = _vectorizer(TfidfVectorizer, smooth_idf=smooth_idf, norm=norm)
    vectorizer.fit(docs)
    if idf_shift:
        vectorizer.idf_ = vectorizer.idf_ + idf_shift
    X = vectorizer.transform(docs).toarray().astype(np.float64)
    return [str(t) for t in vectorizer.get_feature_names_out()], X


# --- the n-gram model: nltk -----------------------------------------------------------


def padded_ngrams(sentence: list[str], n: int, pads: int | None = None) -> list[tuple[str, ...]]:
    """The n-grams of one sentence under the exercise's padding (``pads`` <s> on the left,
    n - 1 unless given, and one </s>), by ``nltk.util.ngrams``."""
    from nltk.util import ngrams

    pads = n - 1 if pads is None else pads
    return list(ngrams([BOS] * pads + list(sentence) + [EOS], n))


def _nltk_counter(sentences, n: int, pads: int | None = None):
    from nltk.lm import NgramCounter

    return NgramCounter([padded_ngrams(s, n, pads) for s in sentences])


def count_ngrams(
    sentences: list[list[str]], n: int, *, pads: int | None = None
) -> dict[tuple[str, ...], int]:
    """n-gram counts from nltk's ``NgramCounter``, as a plain dict {n-gram tuple: count}."""
    counter = _nltk_counter(sentences, n, pads)
    if n == 1:
        return {(w,): c for w, c in counter.unigrams.items()}
    return {ctx + (w,): c for ctx, following in counter[n].items() for w, c in following.items()}


def vocabulary(sentences: list[list[str]], *, without: tuple[str, ...] = ()) -> list[str]:
    """The model's sorted vocabulary: the training words, </s> and <unk>, not <s>."""
    words = {w for s in sentences for w in s} | {EOS, UNK}
    return sorted(words - set(without))


def _query(word: str, context, n: int, known: set[str]) -> tuple[str, tuple[str, ...]]:
    """``word`` and the last n - 1 words of ``context`` (left-padded with <s>), unknown
    words as <unk> (<s> stays itself in a context)."""
    look = lambda w: w if w in known else UNK
    if n == 1:
        return look(word), ()
    ctx = [BOS] * (n - 1) + [w if w == BOS else look(w) for w in context]
    return look(word), tuple(ctx[-(n - 1) :])


def ngram_probs(
    train: list[list[str]],
    n: int,
    k: float,
    queries: list[tuple[str, list[str]]],
    *,
    pads: int | None = None,
    without: tuple[str, ...] = (),
    numerator_only: bool = False,
) -> np.ndarray:
    """P(word | context) for each ``(word, context)`` of ``queries``, float64.

    The default is nltk's ``Lidstone(k)`` on nltk's counts, with the exercise's
    vocabulary (``Vocabulary(words + ["</s>"], unk_label="<unk>")`` has exactly
    len = V) and the exercise's lookup of unknown words. The keywords are the
    misconceptions: ``pads`` <s> instead of n - 1, a vocabulary ``without`` some special
    token (V one smaller, and that token looked up as <unk>), add-k in the
    ``numerator_only`` (closed forms over nltk's counts)."""
    from nltk.lm import Lidstone, Vocabulary

    counter = _nltk_counter(train, n, pads)
    vocab = vocabulary(train, without=without)
    nltk_vocab = Vocabulary([w for w in vocab if w != UNK] + [EOS], unk_label=UNK)
    model = Lidstone(k, n, vocabulary=nltk_vocab, counter=counter)
    known, V = set(vocab), len(vocab)
    out = []
    for word, context in queries:
        w, ctx = _query(word, context, n, known)
        if not without and not numerator_only:
            out.append(model.unmasked_score(w, ctx or None))
            continue
        following = model.context_counts(ctx)
        if numerator_only:
            out.append((following[w] + k) / following.N())  # raises for an unseen context
        else:
            out.append((following[w] + k) / (following.N() + k * V))
    return np.array(out, dtype=np.float64)


def predicted_tokens(sentences: list[list[str]], n: int) -> list[tuple[str, list[str]]]:
    """Every ``(token, context)`` a perplexity predicts: the padded sentence's tokens after
    the n - 1 <s>, </s> included, each with the n - 1 tokens before it."""
    return [(gram[-1], list(gram[:-1])) for s in sentences for gram in padded_ngrams(s, n)]


def perplexity(train, n: int, k: float, test, *, summed: bool = False, **mistake) -> np.ndarray:
    """exp of the mean (or, a misconception, the summed) negative log-likelihood of the
    tokens ``test`` predicts, under :func:`ngram_probs`: a 0-d float64 array (a Python
    float would be compared in float32)."""
    nll = -np.log(ngram_probs(train, n, k, predicted_tokens(test, n), **mistake))
    return np.array(np.exp(nll.sum() if summed else nll.mean()), dtype=np.float64)


# --- inputs the public tests and graders draw -----------------------------------------

DOC_WORDS = ("the", "cat", "sat", "on", "mat", "dog", "Cat", "café")
WORDS = ("the", "cat", "dog", "sat", "ran")
UNSEEN = "zebra"  # never a training word: the model must read it as <unk>
K_VALUES = (1.0, 0.5, 0.1, 2.0)


@st.composite
def documents(draw_st, max_docs: int = 6, max_len: int = 8):
    """A list of 1..``max_docs`` token lists (some may be empty) over :data:`DOC_WORDS`."""
    doc = st.lists(st.sampled_from(DOC_WORDS), max_size=max_len)
    return draw_st(st.lists(doc, min_size=1, max_size=max_docs))


@st.composite
def corpora(draw_st, max_n: int = 4, max_sentences: int = 6, max_len: int = 6):
    """``(train, n, k)``: 1..``max_sentences`` training sentences over :data:`WORDS` (the
    first one not empty, later ones now and then), an order n in 1..``max_n`` and a
    smoothing k."""
    sentence = st.lists(st.sampled_from(WORDS), max_size=max_len)
    first = st.lists(st.sampled_from(WORDS), min_size=1, max_size=max_len)  # at least one word
    train = [draw_st(first), *draw_st(st.lists(sentence, max_size=max_sentences - 1))]
    return train, draw_st(st.integers(1, max_n)), draw_st(st.sampled_from(K_VALUES))


def seen_queries(train: list[list[str]], n: int) -> list[tuple[str, list[str]]]:
    """Every vocabulary word (and an unseen one) after every context seen in training."""
    contexts = sorted({gram[:-1] for gram in count_ngrams(train, n)})
    words = vocabulary(train) + [UNSEEN]
    return [(w, list(ctx)) for ctx in contexts for w in words]


@st.composite
def unseen_queries(draw_st, train: list[list[str]], n: int, count: int = 12):
    """``count`` queries whose word or context holds unseen words, <s>, or a context
    longer or shorter than n - 1 words."""
    word = st.sampled_from(vocabulary(train) + [UNSEEN])
    context_word = st.sampled_from([*WORDS, UNSEEN, BOS, EOS])
    context = st.lists(context_word, max_size=n + 1)
    return draw_st(st.lists(st.tuples(word, context), min_size=count, max_size=count))


def describe_corpus(train, n, k) -> str:
    return f"NGramLM(n={n}, k={k}) trained on {train!r}"


# --- a Markov source with a known entropy rate ----------------------------------------

MARKOV_WORDS = ("the", "cat", "dog", "sat", "ran", "on", "mat", "home")


@dataclass(frozen=True)
class MarkovSource:
    """Sentences from a first-order Markov chain. ``probs[0]`` is P(first word) (after
    <s>); ``probs[1 + i]`` is P(next | words[i]). Column j < m is words[j], column m is </s>."""

    words: tuple[str, ...]
    probs: np.ndarray  # (m + 1, m + 1), rows sum to 1

    def sample(self, count: int, seed: int) -> list[list[str]]:
        """``count`` sentences (the </s> that ends each is not in the list)."""
        rng = np.random.default_rng(seed)
        cumulative = [list(np.cumsum(row)) for row in self.probs]
        m, sentences = len(self.words), []
        for _ in range(count):
            sentence, state = [], 0
            while True:
                j = min(bisect.bisect_right(cumulative[state], rng.random()), m)
                if j == m:
                    break
                sentence.append(self.words[j])
                state = j + 1
            sentences.append(sentence)
        return sentences

    def entropy_rate(self) -> float:
        """Nats per predicted token (</s> included): E[sum of the entropies of the rows
        visited in a sentence] / E[tokens in a sentence]. Each visit of a state predicts
        one token; the expected visits of the words are q0 (I - Q)^-1."""
        m = len(self.words)
        p = self.probs
        safe = np.where(p > 0, p, 1.0)
        row_entropy = -(p * np.log(safe)).sum(axis=1)
        visits = np.linalg.solve((np.eye(m) - p[1:, :m]).T, p[0, :m])
        return float((row_entropy[0] + visits @ row_entropy[1:]) / (1.0 + visits.sum()))


def markov_source(seed: int = 0, words: tuple[str, ...] = MARKOV_WORDS, end: float = 0.2) -> MarkovSource:
    """A random chain over ``words``: sparse Dirichlet rows (some words strongly prefer
    a few followers), P(</s>) = ``end`` after every word, never right after <s>."""
    rng = np.random.default_rng(seed)
    m = len(words)
    probs = np.zeros((m + 1, m + 1))
    probs[:, :m] = rng.dirichlet(np.full(m, 0.3), size=m + 1)
    probs[1:, :m] *= 1.0 - end
    probs[1:, m] = end
    return MarkovSource(tuple(words), probs)


def zipf_corpus(n_tokens: int, vocab_size: int = 50, seed: int = 0, exponent: float = 1.1) -> list[list[str]]:
    """About ``n_tokens`` tokens in sentences of 5..24 words, the words drawn from a
    Zipf law over ``vocab_size`` words (w0 the most frequent): text-like counts."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocab_size + 1) ** exponent
    names = [f"w{i}" for i in range(vocab_size)]
    lengths = rng.integers(5, 25, size=max(1, round(n_tokens / 14.5)))
    ids = rng.choice(vocab_size, size=int(lengths.sum()), p=weights / weights.sum())
    tokens = [names[i] for i in ids]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    return [tokens[a:b] for a, b in zip(starts[:-1], starts[1:])]


# --- misconceptions: what each mistake returns, from the library oracles ------------


def _first_seen_order(docs):
    return list(dict.fromkeys(token for doc in docs for token in doc))


MISCONCEPTIONS = Misconceptions(
    "exercises/section0/README.md",
    Misconception(
        "vocab_unsorted",
        "vocabulary in order of first appearance",
        "the columns follow sorted(vocab): sort the distinct tokens, so every run and every "
        "library agrees on which column is which word",
        readme="0.1 — The vocabulary's order",
        variants={"bag_of_words vocab": _first_seen_order},
    ),
    Misconception(
        "idf_unsmoothed",
        "textbook idf ln(n / df)",
        "the kit (and scikit-learn by default) smooths it: idf = ln((1 + n) / (1 + df)) + 1, "
        "so a word found in every document keeps weight 1 instead of 0",
        readme="0.1 — Smoothing the idf",
        variants={"tfidf": lambda docs: tfidf(docs, smooth_idf=False, idf_shift=-1.0)[1]},
    ),
    Misconception(
        "no_l2_norm",
        "rows not normalised",
        "divide each row of tf * idf by its Euclidean length (np.linalg.norm), leaving empty rows at 0",
        readme="0.1 — Normalising the rows",
        variants={"tfidf": lambda docs: tfidf(docs, norm=None)[1]},
    ),
    Misconception(
        "eos_missing",
        "</s> left out of the vocabulary",
        "the model predicts </s> at the end of every sentence, so it is a word of the vocabulary: "
        "V = training words + </s> + <unk>",
        readme="0.1 — The special tokens",
        variants={
            "vocab": lambda train: vocabulary(train, without=(EOS,)),
            "probs": lambda train, n, k, queries: ngram_probs(train, n, k, queries, without=(EOS,)),
            "perplexity": lambda train, n, k, test: perplexity(train, n, k, test, without=(EOS,)),
        },
    ),
    Misconception(
        "unk_missing",
        "<unk> left out of the vocabulary",
        "unseen words are read as <unk>, which needs its share of the smoothing: "
        "V = training words + </s> + <unk>",
        readme="0.1 — The special tokens",
        variants={
            "vocab": lambda train: vocabulary(train, without=(UNK,)),
            "probs": lambda train, n, k, queries: ngram_probs(train, n, k, queries, without=(UNK,)),
            "perplexity": lambda train, n, k, test: perplexity(train, n, k, test, without=(UNK,)),
        },
    ),
    Misconception(
        "addk_numerator_only",
        "k added to the numerator only",
        "add-k adds k to each of the V counts, so the total grows by k * V: "
        "(count + k) / (context count + k * V), or the probabilities no longer sum to 1",
        readme="0.1 — Add-k smoothing",
        variants={
            "probs": lambda train, n, k, queries: ngram_probs(train, n, k, queries, numerator_only=True),
            "perplexity": lambda train, n, k, test: perplexity(train, n, k, test, numerator_only=True),
        },
    ),
    Misconception(
        "perplexity_summed",
        "exp of the summed negative log-likelihood",
        "perplexity is exp of the mean NLL per predicted token: divide the sum by the number of "
        "tokens predicted (</s> included) before exp()",
        readme="0.1 — Perplexity",
        variants={"perplexity": lambda train, n, k, test: perplexity(train, n, k, test, summed=True)},
    ),
    Misconception(
        "n_pads",
        "n <s> pads instead of n - 1",
        "an n-gram model needs n - 1 words of context, so n - 1 <s> make the first word's context; "
        "an n-th <s> adds an n-gram that predicts <s>",
        readme="0.1 — Padding",
        variants={
            "count_ngrams": lambda sentences, n: count_ngrams(sentences, n, pads=n),
            "probs": lambda train, n, k, queries: ngram_probs(train, n, k, queries, pads=n),
            "perplexity": lambda train, n, k, test: perplexity(train, n, k, test, pads=n),
        },
    ),
    Misconception(
        "counter_added_per_sentence",
        "counts += Counter(...) once per sentence",
        "Counter's + and += build or rescan the whole counter each time (dropping counts <= 0), "
        "so the cost grows with sentences x distinct n-grams: use counts.update(...)",
        readme="0.1 — Counting fast",
        kind="speed",
    ),
)


def check_bag_of_words(got, docs) -> None:
    """The learner's ``bag_of_words(docs)`` against scikit-learn's counts."""
    vocab, X = got
    want_vocab, want_X = bag_of_words(docs)
    check_equal(
        list(vocab),
        want_vocab,
        name=f"bag_of_words({docs!r})'s vocabulary",
        hint="sorted(set of all tokens); no lowercasing",
        suspects=MISCONCEPTIONS.on("bag_of_words vocab", docs),
    )
    assert_close(
        X,
        want_X,
        name=f"bag_of_words({docs!r})'s counts",
        hint="an int64 numpy array of shape (len(docs), len(vocab)); (n, 0) when every document is empty",
    )


def check_tfidf(got, docs) -> None:
    """The learner's ``tfidf(docs)`` against scikit-learn's ``TfidfVectorizer``."""
    vocab, X = got
    want_vocab, want_X = tfidf(docs)
    check_equal(list(vocab), want_vocab, name=f"tfidf({docs!r})'s vocabulary")
    assert_close(
        X,
        want_X,
        name=f"tfidf({docs!r})",
        hint="float64; idf = ln((1 + n) / (1 + df)) + 1; rows divided by their l2 length, empty rows "
        "left at 0 (no NaN)",
        suspects=MISCONCEPTIONS.on("tfidf", docs),
    )


# --- the generated ban test's call, and the figure ------------------------------------


def check_one_call(impl, draw) -> None:
    """One small TF-IDF and one small n-gram probability of the learner's code, checked
    against scikit-learn and nltk: the generated ban test (``test_no_library_shortcuts``,
    llmkit.plugin.bans) makes it after its static scan, with banned calls trapped."""
    words = ["the", "cat", "sat", "on", "mat"]
    docs = [[words[int(i)] for i in draw.integers(0, 5, size=6)] for _ in range(3)]
    vocab, X = impl.tfidf(docs)
    want_vocab, want_X = tfidf(docs)
    check_equal(list(vocab), want_vocab, name="tfidf vocabulary")
    assert_close(np.asarray(X), want_X, name="tfidf matrix")
    model = impl.NGramLM(2, k=1.0)
    model.fit(docs)
    query = [(docs[0][1], [docs[0][0]])]
    assert_close(np.array([float(model.prob(*query[0]))]), ngram_probs(docs, 2, 1.0, query), name="prob")


FIGURE_DOCS = (
    "the cat sat on a mat",
    "the dog sat on a log",
    "the cat chased a dog",
    "the stocks fell on news",
)


def figure(impl) -> Figure:
    """Left: the learner's TF-IDF of four short documents. Right: the perplexity of the
    learner's bigram model on held-out text from :func:`markov_source`, against the
    number of training sentences, for two smoothing constants; it falls towards
    exp(entropy rate), the best any model of that source can do."""
    docs = [d.split() for d in FIGURE_DOCS]
    vocab, X = impl.tfidf(docs)
    X = np.asarray(X, dtype=np.float64)
    source = markov_source(0)
    test = source.sample(400, seed=1)
    sizes = [3, 10, 30, 100, 300, 1000, 3000]
    pool = source.sample(sizes[-1], seed=2)
    curves = {}
    for k in (1.0, 0.01):
        curves[k] = []
        for size in sizes:
            model = impl.NGramLM(2, k=k)
            model.fit(pool[:size])
            curves[k].append(float(model.perplexity(test)))
    best = math.exp(source.entropy_rate())

    fig, (left, right) = new_figure(11.0, 3.8, ncols=2)
    image = left.imshow(X, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    left.set_xticks(range(len(vocab)), list(vocab), rotation=60, fontsize=8)
    left.set_yticks(range(len(docs)), [f"doc {i}" for i in range(len(docs))], fontsize=8)
    for (i, j), value in np.ndenumerate(X):
        if value > 0:
            left.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6, color="white")
    left.set_title("your tfidf: 'the' is in every document, so it weighs least", fontsize=9)
    fig.colorbar(image, ax=left, shrink=0.8)
    for k, values in curves.items():
        right.plot(sizes, values, marker="o", label=f"your NGramLM(2, k={k})")
    right.axhline(best, color="black", linestyle="--", label=f"exp(entropy rate) = {best:.2f}")
    right.set_xscale("log")
    right.set_xlabel("training sentences")
    right.set_ylabel("perplexity on held-out sentences")
    right.set_title("your bigram model on text from a known Markov source", fontsize=9)
    right.legend(fontsize=8)
    return png(fig), "Your TF-IDF weights, and your bigram model's perplexity as it sees more text"
