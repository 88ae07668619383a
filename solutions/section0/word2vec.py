"""Exercise 0.2 — Word2Vec: skip-gram with negative sampling (reference solution).

numpy only, gradients by hand. The conventions are the stub's (exercises/section0/word2vec.py).
"""

from __future__ import annotations

import numpy as np


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """log(1 / (1 + exp(-x))) = -log(1 + exp(-x)), without overflow for any x."""
    return -np.logaddexp(0.0, -x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), without overflow for any x."""
    return np.exp(log_sigmoid(x))


def sgns_loss_and_grads(
    center_vec: np.ndarray, outside_idx: int, negative_idx: np.ndarray, U: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    v = np.asarray(center_vec, dtype=np.float64)
    U = np.asarray(U, dtype=np.float64)
    neg = np.asarray(negative_idx, dtype=np.int64).reshape(-1)
    u_o, u_neg = U[outside_idx], U[neg]
    s_o, s_neg = u_o @ v, u_neg @ v
    loss = -(log_sigmoid(s_o) + log_sigmoid(-s_neg).sum())
    g_o = sigmoid(s_o) - 1.0  # d loss / d s_o
    g_neg = sigmoid(s_neg)  # d loss / d s_k
    grad_center = g_o * u_o + g_neg @ u_neg
    grad_U = np.zeros_like(U)
    grad_U[outside_idx] += g_o * v
    np.add.at(grad_U, neg, g_neg[:, None] * v)  # a repeated index adds its share each time
    return float(loss), grad_center, grad_U


def sgns_loss_and_grads_batch(
    center_vecs: np.ndarray, outside_idx: np.ndarray, negative_idx: np.ndarray, U: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    C = np.asarray(center_vecs, dtype=np.float64)
    U = np.asarray(U, dtype=np.float64)
    out = np.asarray(outside_idx, dtype=np.int64).reshape(-1)
    neg = np.asarray(negative_idx, dtype=np.int64).reshape(len(out), -1)
    u_o, u_neg = U[out], U[neg]  # (B, D), (B, K, D)
    s_o = np.einsum("bd,bd->b", u_o, C)
    s_neg = np.einsum("bkd,bd->bk", u_neg, C)
    loss = -(log_sigmoid(s_o).sum() + log_sigmoid(-s_neg).sum())
    g_o = sigmoid(s_o) - 1.0  # (B,)
    g_neg = sigmoid(s_neg)  # (B, K)
    grad_centers = g_o[:, None] * u_o + np.einsum("bk,bkd->bd", g_neg, u_neg)
    grad_U = np.zeros_like(U)
    np.add.at(grad_U, out, g_o[:, None] * C)
    np.add.at(grad_U, neg, g_neg[:, :, None] * C[:, None, :])
    return float(loss), grad_centers, grad_U


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    weights = np.asarray(counts, dtype=np.float64) ** power
    return weights / weights.sum()


BATCH_SIZE = 128  # pairs per SGD step: small, so a frequent word's summed step stays small


def skipgram_pairs(corpus_ids, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (center, outside) pair at most ``window`` positions apart in one sentence."""
    centers, outsides = [], []
    for sentence in corpus_ids:
        ids = np.asarray(sentence, dtype=np.int64).reshape(-1)
        for offset in range(1, window + 1):
            if offset >= len(ids):
                break
            centers += [ids[:-offset], ids[offset:]]
            outsides += [ids[offset:], ids[:-offset]]
    if not centers:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(centers), np.concatenate(outsides)


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
    rng = np.random.default_rng(seed)
    W_in = rng.uniform(-0.5 / dim, 0.5 / dim, (vocab_size, dim))
    W_out = np.zeros((vocab_size, dim))
    sentences = [np.asarray(s, dtype=np.int64).reshape(-1) for s in corpus_ids]
    centers, outsides = skipgram_pairs(sentences, window)
    counts = (
        np.bincount(np.concatenate(sentences), minlength=vocab_size) if sentences else np.ones(vocab_size)
    )
    noise = noise_distribution(counts)
    n_pairs = len(centers)
    n_steps = max(1, epochs * -(-n_pairs // BATCH_SIZE))
    step = 0
    for _ in range(epochs):
        order = rng.permutation(n_pairs)
        drawn = rng.choice(vocab_size, size=(n_pairs, negatives), p=noise)  # this epoch's negatives
        for start in range(0, n_pairs, BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            c = centers[batch]
            _, grad_c, grad_U = sgns_loss_and_grads_batch(W_in[c], outsides[batch], drawn[batch], W_out)
            rate = lr * max(1e-4, 1.0 - step / n_steps)  # linear decay, as word2vec does
            np.add.at(W_in, c, -rate * grad_c)
            W_out -= rate * grad_U
            step += 1
    return W_in, W_out


def most_similar(E: np.ndarray, vocab, positive, negative=(), topn: int = 10) -> list[tuple[str, float]]:
    index = {word: i for i, word in enumerate(vocab)}
    if isinstance(positive, str):
        positive = [positive]
    if isinstance(negative, str):
        negative = [negative]
    pos = [index[w] for w in positive]  # KeyError for an unknown word
    neg = [index[w] for w in negative]
    E = np.asarray(E, dtype=np.float64)
    unit = E / np.linalg.norm(E, axis=1, keepdims=True)
    query = unit[pos].sum(axis=0) - unit[neg].sum(axis=0)
    query = query / np.linalg.norm(query)
    scores = unit @ query
    excluded = set(pos) | set(neg)
    order = np.argsort(-scores, kind="stable")
    best = [int(i) for i in order if int(i) not in excluded][:topn]
    return [(vocab[i], float(scores[i])) for i in best]
