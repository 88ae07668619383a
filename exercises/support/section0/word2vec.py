"""Support for exercise 0.2 (Word2Vec, skip-gram with negative sampling): the oracles,
the corpus with planted attributes, the cases the tests draw, the named misconceptions
and the figure.

* :func:`torch_sgns` — the loss and its gradients by torch float64 autograd, from numpy
  inputs (one pair or a batch).
* :func:`three_cos_add` — the analogy rule (unit vectors, query words excluded) written
  with torch's ``F.normalize``; the graders answer the planted analogies with it.
* :func:`planted_corpus`, :func:`planted_analogies` — a corpus whose words carry three
  binary attributes (gender, royalty, number), each value with context words of its own,
  and the 72 analogies that hold between its eight planted words.
* :func:`assert_numpy_only` — the rule of the exercise: the learner's module imports no
  torch, gensim or other autograd library.
* ``MISCONCEPTIONS`` — each variant is the oracle with one thing changed: autograd of the
  loss with the negative term's sign flipped, numpy's buffered ``grad[idx] += x``, the
  log of 1 - σ, counts to the power 1, the query words kept, raw dot products.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import SEEDS, CheckFailure, Misconception, Misconceptions, assert_close

# --- oracles: torch float64 autograd and the analogy rule -------------------------


def torch_sgns(center, outside, negatives, U, *, negative_sign: float = 1.0) -> dict:
    """The SGNS loss and its gradients by torch float64 autograd.

    ``center`` (D,) with an int ``outside`` and ``negatives`` (K,) is one pair;
    ``center`` (B, D) with ``outside`` (B,) and ``negatives`` (B, K) is a batch, whose
    loss is the sum of its pairs' losses. Returns numpy arrays: ``loss`` (a float),
    ``grad_center`` (the shape of ``center``), ``grad_U`` (V, D), and each occurrence's
    own gradient, before they add up: ``outside_rows`` (B, D) and ``negative_rows``
    (B, K, D). With ``negative_sign=-1`` the gradients are those of the loss with the
    negative term's sign flipped (the loss returned stays the true one).
    """
    single = np.ndim(center) == 1
    C = torch.tensor(np.atleast_2d(np.asarray(center, dtype=np.float64)), requires_grad=True)
    o = torch.as_tensor(np.asarray(outside, dtype=np.int64).reshape(-1))
    n = torch.as_tensor(np.asarray(negatives, dtype=np.int64).reshape(len(o), -1))
    Ut = torch.tensor(np.asarray(U, dtype=np.float64), requires_grad=True)
    u_o, u_n = Ut[o], Ut[n]
    u_o.retain_grad()
    u_n.retain_grad()
    positive_term = F.logsigmoid((u_o * C).sum(-1)).sum()
    negative_term = F.logsigmoid(-(u_n * C[:, None, :]).sum(-1)).sum()
    loss = -(positive_term + negative_term)
    (-(positive_term + negative_sign * negative_term)).backward()
    grad_center = C.grad.numpy()
    return {
        "loss": float(loss.detach()),
        "grad_center": grad_center[0] if single else grad_center,
        "grad_U": Ut.grad.numpy(),
        "outside_rows": u_o.grad.numpy(),
        "negative_rows": u_n.grad.numpy(),
    }


def torch_autograd_batch(centers, outside, negatives, U) -> tuple[float, np.ndarray, np.ndarray]:
    """The speed baseline: the batched loss and gradients by torch autograd on the same
    float64 arrays (shared, not copied), as ``sgns_loss_and_grads_batch`` returns them."""
    C = torch.from_numpy(centers).requires_grad_()
    Ut = torch.from_numpy(U).requires_grad_()
    o, n = torch.from_numpy(outside), torch.from_numpy(negatives)
    s_o = (Ut[o] * C).sum(-1)
    s_n = (Ut[n] * C[:, None, :]).sum(-1)
    loss = -(F.logsigmoid(s_o).sum() + F.logsigmoid(-s_n).sum())
    loss.backward()
    return float(loss.detach()), C.grad.numpy(), Ut.grad.numpy()


def speed_inputs(i: int, B: int = 4096, V: int = 10_000, D: int = 100, K: int = 5):
    """The i-th inputs of a timed batched call (fresh values each time)."""
    rng = np.random.default_rng(i)
    U = rng.normal(0.0, 0.3, (V, D))
    return rng.normal(0.0, 0.3, (B, D)), rng.integers(0, V, B), rng.integers(0, V, (B, K)), U


def torch_noise_distribution(counts, power: float = 0.75) -> np.ndarray:
    weights = torch.as_tensor(np.asarray(counts, dtype=np.float64)).pow(power)
    return (weights / weights.sum()).numpy()


def three_cos_add(
    E, vocab, positive, negative=(), topn: int = 10, *, exclude_query: bool = True, unit: bool = True
) -> list[tuple[str, float]]:
    """3CosAdd as gensim's ``most_similar`` answers it, with torch's ``F.normalize``:
    cosines with the normalised sum of the positive words' unit vectors minus the
    negative words', best first (ties to the lower index), query words left out.
    ``exclude_query`` and ``unit`` are there for the misconceptions."""
    positive = [positive] if isinstance(positive, str) else list(positive)
    negative = [negative] if isinstance(negative, str) else list(negative)
    index = {word: i for i, word in enumerate(vocab)}
    pos, neg = [index[w] for w in positive], [index[w] for w in negative]
    rows = torch.as_tensor(np.asarray(E, dtype=np.float64))
    if unit:
        rows = F.normalize(rows, dim=1)
    query = rows[pos].sum(0) - rows[neg].sum(0)
    scores = rows @ (F.normalize(query, dim=0) if unit else query)
    order = torch.sort(-scores, stable=True).indices.tolist()
    excluded = set(pos) | set(neg) if exclude_query else set()
    best = [i for i in order if i not in excluded][:topn]
    return [(vocab[i], float(scores[i])) for i in best]


# --- the corpus with planted attributes ------------------------------------------

ATTRIBUTES = (("male", "female"), ("common", "royal"), ("singular", "plural"))
PLANTED = {  # (gender, royalty, number) -> word
    ("male", "common", "singular"): "man",
    ("female", "common", "singular"): "woman",
    ("male", "royal", "singular"): "king",
    ("female", "royal", "singular"): "queen",
    ("male", "common", "plural"): "men",
    ("female", "common", "plural"): "women",
    ("male", "royal", "plural"): "kings",
    ("female", "royal", "plural"): "queens",
}
CONTEXTS = {  # each attribute value's own context words
    "male": ("he", "him", "his"),
    "female": ("she", "her", "hers"),
    "common": ("field", "market", "village"),
    "royal": ("crown", "throne", "palace"),
    "singular": ("a", "one", "each"),
    "plural": ("many", "several", "all"),
}
FILLERS = ("the", "and", "of", "to", "in", "was")
VOCAB = [*PLANTED.values(), *itertools.chain(*CONTEXTS.values()), *FILLERS]

# What the graders (and the figure) train with: the reference answers all 72 analogies
# in about a second, over every seed tried (see the grader's notes).
TRAINING = dict(dim=16, window=4, negatives=5, epochs=5, lr=0.025)
SENTENCES_PER_WORD = 100


def planted_corpus(sentences_per_word: int = SENTENCES_PER_WORD, seed: int = 0) -> list[np.ndarray]:
    """Sentences of word ids (into :data:`VOCAB`), in a random order. Each holds one
    planted word, one context word of each of its three attributes (chosen at random
    among three) and one or two fillers, shuffled: "queen" comes with she/her/hers,
    crown/throne/palace and a/one/each, never with he, field or many."""
    rng = np.random.default_rng(seed)
    index = {word: i for i, word in enumerate(VOCAB)}
    sentences = []
    for attributes, word in PLANTED.items():
        for _ in range(sentences_per_word):
            words = [word, *(CONTEXTS[a][rng.integers(3)] for a in attributes)]
            words += [FILLERS[i] for i in rng.integers(len(FILLERS), size=rng.integers(1, 3))]
            sentences.append(np.array([index[w] for w in rng.permutation(words)], dtype=np.int64))
    return [sentences[i] for i in rng.permutation(len(sentences))]


def planted_analogies() -> list[tuple[str, str, str, str]]:
    """``(a, b, c, d)``: a is to b as c is to d, so b - a + c should be d. Two pairs of
    planted words that differ in the same one attribute, in both directions: 3
    attributes x 12 ordered pairs of pairs x 2 = 72."""
    out = []
    for axis, (first, second) in enumerate(ATTRIBUTES):
        pairs = []
        for attributes, word in PLANTED.items():
            if attributes[axis] == first:
                flipped = (*attributes[:axis], second, *attributes[axis + 1 :])
                pairs.append((word, PLANTED[flipped]))
        for (a, b), (c, d) in itertools.permutations(pairs, 2):
            out += [(a, b, c, d), (b, a, d, c)]
    return out


def analogy_answers(E, vocab=VOCAB) -> list[tuple[tuple[str, str, str, str], str]]:
    """Each planted analogy and the word :func:`three_cos_add` answers from ``E`` (over
    the whole vocabulary, query words excluded)."""
    return [
        ((a, b, c, d), three_cos_add(E, vocab, [b, c], [a], topn=1)[0][0])
        for a, b, c, d in planted_analogies()
    ]


# --- inputs the public tests and graders draw --------------------------------------


@st.composite
def sgns_case(draw_st, *, batch: bool = False, max_vocab: int = 8):
    """One call: V, D, K (and B for a batch), and a value seed. Small vocabularies make
    repeated negatives, and the outside word among them, common."""
    case = dict(
        V=draw_st(st.integers(2, max_vocab), label="V"),
        D=draw_st(st.integers(1, 6), label="D"),
        K=draw_st(st.integers(1, 6), label="K"),
        seed=draw_st(SEEDS, label="seed"),
    )
    if batch:
        case["B"] = draw_st(st.integers(1, 7), label="B")
    return case


def sgns_inputs(case, scale: float = 1.0):
    """``(center, outside, negatives, U)`` as numpy arrays for a :func:`sgns_case`."""
    rng = np.random.default_rng(case["seed"])
    V, D, K = case["V"], case["D"], case["K"]
    U = rng.normal(0.0, scale, (V, D))
    if "B" in case:
        B = case["B"]
        return rng.normal(0.0, scale, (B, D)), rng.integers(0, V, B), rng.integers(0, V, (B, K)), U
    return rng.normal(0.0, scale, D), int(rng.integers(0, V)), rng.integers(0, V, K), U


@st.composite
def similarity_case(draw_st):
    """Embeddings of V words (norms from 0.2 to 5), a query and topn."""
    V = draw_st(st.integers(4, 12), label="V")
    n_pos = draw_st(st.integers(1, 2), label="positives")
    n_neg = draw_st(st.integers(0, min(2, V - n_pos - 1)), label="negatives")
    return dict(
        V=V,
        D=draw_st(st.integers(2, 6), label="D"),
        n_pos=n_pos,
        n_neg=n_neg,
        topn=draw_st(st.integers(1, V + 2), label="topn"),
        seed=draw_st(SEEDS, label="seed"),
    )


def similarity_inputs(case):
    """``(E, vocab, positive, negative, topn)`` for a :func:`similarity_case`."""
    rng = np.random.default_rng(case["seed"])
    V, D = case["V"], case["D"]
    E = rng.normal(size=(V, D))
    E *= rng.uniform(0.2, 5.0, (V, 1)) / np.linalg.norm(E, axis=1, keepdims=True)
    vocab = [f"w{i}" for i in range(V)]
    chosen = [vocab[i] for i in rng.permutation(V)[: case["n_pos"] + case["n_neg"]]]
    return E, vocab, chosen[: case["n_pos"]], chosen[case["n_pos"] :], case["topn"]


def as_float(value, name: str) -> float:
    """A learner's loss or score as a float (a Python float, numpy scalar or 0-d array)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind == "f":
        return float(value)
    raise CheckFailure(
        f"{name}: expected a number, got {type(value).__name__}",
        hint="return the loss as a Python float, e.g. float(loss)",
    )


def as_pairs(value, name: str) -> list[tuple[str, float]]:
    """most_similar's answer as a list of (word, float)."""
    try:
        return [(str(word), as_float(score, f"{name}: a score")) for word, score in value]
    except (TypeError, ValueError):
        raise CheckFailure(
            f"{name}: expected a list of (word, score) pairs, got {type(value).__name__}",
            hint="return [(word, float(score)), ...], best first",
        ) from None


# --- the rule: numpy only ------------------------------------------------------------

FORBIDDEN_IMPORTS = ("torch", "gensim", "tensorflow", "jax", "keras", "autograd", "mxnet", "paddle")


def forbidden_imports(source: str, filename: str = "<learner>") -> list[str]:
    """The lines of ``source`` that import an autograd or word-vector library."""
    tree = ast.parse(source, filename)
    lines = source.splitlines()
    found = []

    def banned(module: str | None) -> bool:
        return bool(module) and module.split(".")[0] in FORBIDDEN_IMPORTS

    for node in ast.walk(tree):
        names: list[str | None] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if called in ("__import__", "import_module") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        if any(banned(name) for name in names):
            found.append(f"{Path(filename).name} line {node.lineno}: {lines[node.lineno - 1].strip()}")
    return found


def assert_numpy_only(files) -> None:
    """Fail, naming the lines, when the learner's module imports torch, gensim or another
    autograd or word-vector library."""
    found = [line for f in files for line in forbidden_imports(Path(f).read_text(encoding="utf-8"), str(f))]
    if found:
        listing = "\n  ".join(found)
        raise CheckFailure(
            f"exercise 0.2 is numpy only, with gradients by hand; these lines import "
            f"{' / '.join(FORBIDDEN_IMPORTS)}:\n  {listing}",
            hint="derive d loss / d v_c and d loss / d U yourself: σ(s) - 1 for the outside word, σ(s_k) "
            "for each negative",
        )


def check_one_call(impl, draw) -> None:
    """One small call of the learner's gradients, checked against torch's: the numpy-only
    tests make it after their scan of the imports, so a stub earns nothing there."""
    case = dict(V=5, D=3, K=4, seed=int(draw.integers(0, 2**31 - 1)))
    center, outside, negatives, U = sgns_inputs(case)
    want = torch_sgns(center, outside, negatives, U)
    loss, grad_center, grad_U = impl.sgns_loss_and_grads(center, outside, negatives, U)
    assert_close(np.array(as_float(loss, "loss")), np.array(want["loss"]), name="loss")
    assert_close(grad_center, want["grad_center"], name="grad_center")
    assert_close(grad_U, want["grad_U"], name="grad_U")


# --- misconceptions: what each known mistake returns ---------------------------------


def _sgns_output(which: str, **options):
    """A variant of sgns_loss_and_grads(_batch): one of its outputs from torch_sgns."""

    def variant(center, outside, negatives, U):
        out = torch_sgns(center, outside, negatives, U, **options)
        return np.array(out["loss"]) if which == "loss" else out[which]

    return variant


def _rows_overwritten(center, outside, negatives, U):
    """grad_U as ``grad_U[outside] += rows; grad_U[negatives] += rows`` makes it: numpy's
    fancy-index ``+=`` is buffered, so a repeated index keeps one occurrence (the last)."""
    out = torch_sgns(center, outside, negatives, U)
    o = np.asarray(outside, dtype=np.int64).reshape(-1)
    n = np.asarray(negatives, dtype=np.int64).reshape(-1)
    grad = np.zeros(np.shape(U))
    grad[o] += out["outside_rows"]
    grad[n] += out["negative_rows"].reshape(len(n), -1)
    return grad


def _loss_with_log_one_minus_sigmoid(center, outside, negatives, U):
    """The loss with log σ(-s) written log(1 - σ(s)): 1 - σ(s) is 0.0 once σ(s) rounds to 1."""
    C = torch.as_tensor(np.atleast_2d(np.asarray(center, dtype=np.float64)))
    o = torch.as_tensor(np.asarray(outside, dtype=np.int64).reshape(-1))
    n = torch.as_tensor(np.asarray(negatives, dtype=np.int64).reshape(len(o), -1))
    Ut = torch.as_tensor(np.asarray(U, dtype=np.float64))
    s_o, s_n = (Ut[o] * C).sum(-1), (Ut[n] * C[:, None, :]).sum(-1)
    return np.array(float(-(torch.log(torch.sigmoid(s_o)).sum() + torch.log(1 - torch.sigmoid(s_n)).sum())))


def _sgns_variants(**by_output):
    """The same variants for the one-pair and the batched function."""
    out = {}
    for which, variant in by_output.items():
        out[f"sgns_loss_and_grads.{which}"] = variant
        out[f"sgns_loss_and_grads_batch.{which}"] = variant
    return out


def _similarity(which: str, **options):
    def variant(E, vocab, positive, negative=(), topn=10):
        pairs = three_cos_add(E, vocab, positive, negative, topn, **options)
        return [w for w, _ in pairs] if which == "words" else np.array([s for _, s in pairs])

    return variant


MISCONCEPTIONS = Misconceptions(
    "exercises/section0/README.md",
    Misconception(
        "negative_sign_flipped",
        "the negative term's gradient has the wrong sign",
        "d/ds [-log σ(-s)] = +σ(s): each negative adds σ(s_k) u_k to grad_center and σ(s_k) v_c to its "
        "row of grad_U (the outside word's factor is σ(s_o) - 1)",
        readme="0.2 — The negative term's sign",
        variants=_sgns_variants(
            grad_center=_sgns_output("grad_center", negative_sign=-1.0),
            grad_U=_sgns_output("grad_U", negative_sign=-1.0),
        ),
    ),
    Misconception(
        "repeated_rows_overwritten",
        "grad_U[idx] += x with repeated indices",
        "numpy's fancy-index += is buffered: a word drawn twice (or the outside word drawn as a negative) "
        "keeps one term; np.add.at(grad_U, idx, x) adds every one",
        readme="0.2 — Repeated negatives add up",
        variants=_sgns_variants(grad_U=_rows_overwritten),
    ),
    Misconception(
        "unstable_log_sigmoid",
        "log σ(-s) computed as log(1 - σ(s))",
        "for s > ~37, σ(s) rounds to 1.0 and log(0) is -inf: use log σ(x) = -logaddexp(0, -x)",
        readme="0.2 — A stable log-sigmoid",
        variants=_sgns_variants(loss=_loss_with_log_one_minus_sigmoid),
    ),
    Misconception(
        "noise_power_one",
        "noise distribution without the 3/4 power",
        "P(w) is counts[w] ** power / sum(counts ** power), not counts / sum(counts)",
        readme="0.2 — The noise distribution",
        variants={"noise_distribution": lambda counts, power=0.75: torch_noise_distribution(counts, 1.0)},
    ),
    Misconception(
        "query_word_returned",
        "most_similar returns a query word",
        "the positive and negative words are left out of the answer, as gensim does "
        "(king - man + woman is closest to king itself)",
        readme="0.2 — most_similar: unit vectors, query words left out",
        variants={
            "most_similar.words": _similarity("words", exclude_query=False),
            "most_similar.scores": _similarity("scores", exclude_query=False),
        },
    ),
    Misconception(
        "cosine_unnormalised",
        "dot products of raw vectors taken for cosines",
        "normalise every row of E (and the query) to unit length first: raw dot products favour long vectors",
        readme="0.2 — most_similar: unit vectors, query words left out",
        variants={
            "most_similar.words": _similarity("words", unit=False),
            "most_similar.scores": _similarity("scores", unit=False),
        },
    ),
    Misconception(
        "loop_over_pairs",
        "a Python loop over the pairs of a batch",
        "one pass of gathers, einsum and np.add.at does all B pairs; a (V, D) grad_U per pair costs more",
        readme="0.2 — Speed: one batched computation",
        kind="speed",
    ),
)


# --- the figure -----------------------------------------------------------------------


def figure(impl) -> Figure:
    """The learner's train_word2vec on the planted corpus: the eight planted words'
    W_in rows projected on their first two principal components, with the gender offsets
    drawn as arrows, and their cosine similarities; the caption quotes the learner's
    most_similar for king - man + woman."""
    W_in, _ = impl.train_word2vec(planted_corpus(seed=0), len(VOCAB), seed=0, **TRAINING)
    W_in = np.asarray(W_in, dtype=np.float64)
    words = list(PLANTED.values())
    rows = W_in[[VOCAB.index(w) for w in words]]
    centred = rows - rows.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    fig, (left, right) = new_figure(10.0, 4.2, ncols=2)
    for i, word in enumerate(words):
        left.scatter(*xy[i], color="tab:blue" if i % 2 == 0 else "tab:red", zorder=3)
        left.annotate(word, xy[i], textcoords="offset points", xytext=(5, 5), fontsize=10)
    for i in range(0, len(words), 2):  # man -> woman, king -> queen, ...
        left.annotate(
            "", xy[i + 1], xy[i], arrowprops=dict(arrowstyle="->", color="0.5", shrinkA=6, shrinkB=6)
        )
    left.set_title("W_in of the planted words (first 2 principal components)", fontsize=10)
    left.set_xlabel("PC 1")
    left.set_ylabel("PC 2")
    image = right.imshow(unit @ unit.T, vmin=-1, vmax=1, cmap="RdBu_r")
    right.set_xticks(range(len(words)), words, rotation=45, fontsize=9)
    right.set_yticks(range(len(words)), words, fontsize=9)
    right.set_title("cosine similarity", fontsize=10)
    fig.colorbar(image, ax=right, shrink=0.8)
    try:
        answer = impl.most_similar(W_in, VOCAB, positive=["king", "woman"], negative=["man"], topn=1)
        said = f"your most_similar(king - man + woman) = {answer[0][0]!r} ({float(answer[0][1]):.2f})"
    except NotImplementedError:
        said = "most_similar is not written yet"
    right_answers = sum(d == got for (_, _, _, d), got in analogy_answers(W_in))
    caption = (
        f"Your word2vec on the planted corpus: arrows are the male -> female offsets; "
        f"{right_answers} of {len(planted_analogies())} planted analogies right (3CosAdd); {said}"
    )
    return png(fig), caption
