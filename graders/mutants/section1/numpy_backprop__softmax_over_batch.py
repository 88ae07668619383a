"""Mutant: softmax normalised over the batch axis (axis=0) instead of the classes.

Misconception: axis=0 is "the" axis of a softmax. Each row is one example's
scores, and its probabilities over the classes must sum to 1: max, exp and sum
run along axis=1.
"""


def softmax_cross_entropy(logits, labels):
    n = logits.shape[0]
    shifted = logits - logits.max(axis=0, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=0, keepdims=True)
    loss = -np.log(probs[np.arange(n), labels]).mean()
    dlogits = probs.copy()
    dlogits[np.arange(n), labels] -= 1.0
    return float(loss), dlogits / n
