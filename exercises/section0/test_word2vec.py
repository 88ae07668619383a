"""Public tests for exercise 0.2 (Word2Vec, skip-gram with negative sampling).
Run: pytest exercises/section0/test_word2vec.py

Losses and gradients are compared with torch float64 autograd on the same arrays (small
vocabularies, so repeated negatives come up), most_similar with the 3CosAdd rule written
with torch's F.normalize. A failure says which known mistake your output looks like. The
hidden graders draw more cases, check central differences and speed, and train your
train_word2vec on a corpus with planted analogies (king - man + woman = queen).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import SEEDS, assert_close, check_equal, describe_case, load_support

pytestmark = pytest.mark.exercise("0.2")
support = load_support("0.2")
mistakes = support.MISCONCEPTIONS


def check_sgns(got, center, outside, negatives, U, what: str) -> None:
    """The three outputs of sgns_loss_and_grads(_batch) against torch's, with suspects."""
    want = support.torch_sgns(center, outside, negatives, U)
    loss, grad_center, grad_U = got
    args = (center, outside, negatives, U)
    label = describe_case(
        what, f"outside={np.asarray(outside).tolist()}", negatives=np.asarray(negatives).tolist()
    )
    assert_close(
        np.array(support.as_float(loss, f"{label}: loss")),
        np.array(want["loss"]),
        name=f"{label}: loss",
        hint="loss = -log σ(s_o) - Σ_k log σ(-s_k), finite for any score; a batch's loss is the sum",
        suspects=mistakes.on(f"{what}.loss", *args),
    )
    assert_close(
        grad_center,
        want["grad_center"],
        name=f"{label}: grad_center{'s' if np.ndim(center) == 2 else ''}",
        hint="grad_center = (σ(s_o) - 1) u_o + Σ_k σ(s_k) u_k",
        suspects=mistakes.on(f"{what}.grad_center", *args),
    )
    assert_close(
        grad_U,
        want["grad_U"],
        name=f"{label}: grad_U",
        hint="only the rows of the outside and negative words are non-zero; a repeated row sums its terms",
        suspects=mistakes.on(f"{what}.grad_U", *args),
    )


@settings(max_examples=10, report_multiple_bugs=False)
@given(V=st.integers(1, 8), power=st.sampled_from([0.75, 0.5, 1.0]), seed=SEEDS)
def test_noise_distribution(impl, V, power, seed):
    counts = np.random.default_rng(seed).integers(0, 50, V)
    counts[0] += 1  # at least one word occurs
    kwargs = {} if power == 0.75 else {"power": power}
    assert_close(
        impl.noise_distribution(counts, **kwargs),
        support.torch_noise_distribution(counts, power),
        name=f"noise_distribution(counts={counts.tolist()}{f', power={power}' if kwargs else ''})",
        suspects=mistakes.on("noise_distribution", counts, **kwargs),
    )


@settings(max_examples=12, report_multiple_bugs=False)
@given(case=support.sgns_case())
def test_one_pair_matches_torch(impl, case):
    center, outside, negatives, U = support.sgns_inputs(case)
    got = impl.sgns_loss_and_grads(center, outside, negatives, U)
    check_sgns(got, center, outside, negatives, U, "sgns_loss_and_grads")


def test_repeated_negatives_add_up(impl, draw):
    rng = draw.rng
    U, center = rng.normal(size=(5, 3)), rng.normal(size=3)
    negatives = np.array([2, 4, 2, 1, 2])  # word 2 drawn three times, and the outside word 1 once
    got = impl.sgns_loss_and_grads(center, 1, negatives, U)
    check_sgns(got, center, 1, negatives, U, "sgns_loss_and_grads")


def test_scores_of_fifty(impl):
    center = np.array([5.0, 0.0, 1.0])
    U = np.array([[-10.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 1.0, 0.5], [10.0, 3.0, 0.0]])
    negatives = np.array([1, 2, 3])  # scores +50, 0.5 and +50; the outside word 0 scores -50
    got = impl.sgns_loss_and_grads(center, 0, negatives, U)
    check_sgns(got, center, 0, negatives, U, "sgns_loss_and_grads")


@settings(max_examples=10, report_multiple_bugs=False)
@given(case=support.sgns_case(batch=True))
def test_batch_matches_torch(impl, case):
    center, outside, negatives, U = support.sgns_inputs(case)
    got = impl.sgns_loss_and_grads_batch(center, outside, negatives, U)
    check_sgns(got, center, outside, negatives, U, "sgns_loss_and_grads_batch")


def test_batch_scores_of_fifty(impl):
    centers = np.array([[5.0, 0.0], [0.0, 5.0]])
    U = np.array([[-10.0, 0.0], [10.0, 0.0], [0.0, 10.0], [0.0, -10.0]])
    outside, negatives = np.array([0, 3]), np.array([[1, 1], [2, 0]])  # scores -50, then +50 twice
    got = impl.sgns_loss_and_grads_batch(centers, outside, negatives, U)
    check_sgns(got, centers, outside, negatives, U, "sgns_loss_and_grads_batch")


def check_similar(got, E, vocab, positive, negative, topn) -> None:
    pairs = support.as_pairs(got, "most_similar")
    want = support.three_cos_add(E, vocab, positive, negative, topn)
    name = f"most_similar(positive={positive}, negative={negative}, topn={topn})"
    check_equal(
        [w for w, _ in pairs],
        [w for w, _ in want],
        name=f"{name}: the words",
        hint="cosines on unit vectors, best first, without the query words",
        suspects=mistakes.on("most_similar.words", E, vocab, positive, negative, topn),
    )
    assert_close(
        np.array([s for _, s in pairs]),
        np.array([s for _, s in want]),
        name=f"{name}: the scores",
        suspects=mistakes.on("most_similar.scores", E, vocab, positive, negative, topn),
    )


@settings(max_examples=10, report_multiple_bugs=False)
@given(case=support.similarity_case())
def test_most_similar_matches_3cosadd(impl, case):
    E, vocab, positive, negative, topn = support.similarity_inputs(case)
    check_similar(impl.most_similar(E, vocab, positive, negative, topn), E, vocab, positive, negative, topn)


def test_nearest_neighbours_of_one_word(impl, draw):
    E = draw.rng.normal(size=(6, 3)) * np.array([[0.3], [4.0], [1.0], [2.5], [0.5], [1.5]])
    vocab = ["king", "queen", "man", "woman", "crown", "he"]
    check_similar(impl.most_similar(E, vocab, ["king"], topn=3), E, vocab, ["king"], [], 3)


def test_numpy_only(impl, impl_files, draw):
    support.assert_numpy_only(impl_files)
    support.check_one_call(impl, draw)
