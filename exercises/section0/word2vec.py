"""Exercise 0.2 — Word2Vec: skip-gram with negative sampling (SGNS), in numpy.

Replace every ``raise NotImplementedError`` with your implementation, then run

    pytest exercises/section0/test_word2vec.py      (or: llmkit check 0.2)

You write the loss and its gradients by hand, so this module uses numpy only:
no torch, no autograd library, no gensim (the graders scan your imports). Inputs are
float64 arrays and int arrays of word ids; return float64 arrays and Python floats.
Leave the arrays you are given unchanged.

The model. Every word w has two vectors: an input ("center") vector, a row of W_in,
and an output ("outside") vector, a row of U = W_out. For a center vector v_c, the
outside word o seen near it and K negative words n_1..n_K drawn from a noise
distribution, with s_o = u_o · v_c and s_k = u_{n_k} · v_c, the loss is

    loss = -log σ(s_o) - Σ_k log σ(-s_k),        σ(x) = 1 / (1 + exp(-x))

The same negative word may be drawn twice, and the outside word may be drawn as a
negative: each occurrence is a term of the sum, and its gradient adds up.
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (numpy is all you need)


def sgns_loss_and_grads(
    center_vec: np.ndarray, outside_idx: int, negative_idx: np.ndarray, U: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """The SGNS loss of one (center, outside) pair and its gradients.

    Args:
        center_vec: (D,) float64, the center word's input vector v_c.
        outside_idx: int, the id of the outside word o (a row of U).
        negative_idx: (K,) int, the ids of the K negative words; repeats allowed, and
            ``outside_idx`` may be among them.
        U: (V, D) float64, the output vectors of the whole vocabulary.

    Returns ``(loss, grad_center, grad_U)``:
        loss: a Python float, the loss above. It must stay finite and exact for scores
            as large as ±50 (and beyond): log σ(-s) is not log(1 - σ(s)) when σ(s)
            rounds to 1.0.
        grad_center: (D,) float64, d loss / d v_c.
        grad_U: (V, D) float64, d loss / d U: zero except the rows of o and of the
            negatives. A row that occurs several times gets the sum of its terms
            (``grad_U[idx] += x`` keeps only one of them: see ``np.add.at``).
    """
    raise NotImplementedError


def sgns_loss_and_grads_batch(
    center_vecs: np.ndarray, outside_idx: np.ndarray, negative_idx: np.ndarray, U: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """``sgns_loss_and_grads`` for B pairs at once, without a Python loop over the pairs.

    Args:
        center_vecs: (B, D) float64, one center vector per pair.
        outside_idx: (B,) int.
        negative_idx: (B, K) int.
        U: (V, D) float64.

    Returns ``(loss, grad_centers, grad_U)``:
        loss: a Python float, the SUM of the B pairs' losses (not the mean).
        grad_centers: (B, D) float64; row b is pair b's grad_center.
        grad_U: (V, D) float64, the sum of the B pairs' grad_U (a word may be the
            outside or a negative word of several pairs).

    Speed: the graders time it at B = 4096 (V = 10_000, D = 100, K = 5) against torch
    autograd on the same arrays; within 3x of it passes.
    """
    raise NotImplementedError


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """The distribution negative words are drawn from: P(w) ∝ counts[w] ** power.

    counts: (V,) non-negative ints or floats (at least one positive), the word counts
    of the corpus. Returns (V,) float64 summing to 1. A word that never occurs gets 0.
    power=0.75 (Mikolov et al.) raises rare words' share above their frequency.
    """
    raise NotImplementedError


def train_word2vec(
    corpus_ids,
    vocab_size: int,
    dim: int,
    window: int = 2,
    negatives: int = 5,
    epochs: int = 5,
    lr: float = 0.025,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Train skip-gram with negative sampling by SGD; return ``(W_in, W_out)``, both
    (vocab_size, dim) float64.

    corpus_ids: a list of sentences, each a sequence of int word ids in [0, vocab_size).
    A training pair is (center, outside) for every two positions of one sentence at
    most ``window`` apart (both directions; pairs never cross sentences). Each pair
    gets ``negatives`` words drawn from ``noise_distribution`` of the corpus' counts.

    One pass over all pairs (in a random order) per epoch; the step is plain SGD on
    each pair's loss with rate ``lr`` (you may decay it linearly towards 0 over the
    training, as word2vec does). Minibatches through ``sgns_loss_and_grads_batch`` are
    fine and much faster: its loss is a sum, so a batch's step is the sum of its pairs'
    steps. Keep batches small (about 64 to 256 pairs) so that a frequent word's
    summed step stays small, and apply the center gradients with ``np.add.at`` too.

    Start as word2vec does: W_in uniform in [-0.5 / dim, 0.5 / dim), W_out zeros.
    Use ``np.random.default_rng(seed)`` for every random choice, so one seed gives one
    result. The graders train on a corpus they generate and answer analogies
    (king - man + woman) with your W_in: give it a few seconds, not minutes.
    """
    raise NotImplementedError


def most_similar(E: np.ndarray, vocab, positive, negative=(), topn: int = 10) -> list[tuple[str, float]]:
    """The ``topn`` words nearest to positive - negative, as gensim's
    ``KeyedVectors.most_similar`` answers it (3CosAdd).

    Args:
        E: (V, D) float64 embeddings (no zero rows); row i is the vector of vocab[i].
        vocab: the V words, a list of str.
        positive, negative: words (a list of str, or one str); ``negative`` may be empty.
        topn: how many words to return; fewer when fewer words are left.

    Scores are cosines: normalise every row of E to unit length, add the unit vectors
    of the positive words and subtract those of the negative ones, normalise that query
    and score every word by its dot product with it (so every score is in [-1, 1]).
    The query words themselves are never returned. Returns a list of (word, score)
    tuples, the score a Python float, best first; ties go to the lower index. A word
    that is not in vocab raises KeyError.

        most_similar(E, vocab, positive=["king", "woman"], negative=["man"], topn=1)
        -> [("queen", 0.87)]
    """
    raise NotImplementedError
