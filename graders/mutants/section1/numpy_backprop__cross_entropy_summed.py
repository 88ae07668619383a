"""Mutant: cross-entropy summed over the batch instead of averaged.

Misconception: the loss is "the" sum of the per-example losses. Loss and
gradient are N times too large, and the learning rate must shrink with the batch.
"""


def softmax_cross_entropy(logits, labels):
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), labels].sum()
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), labels] -= 1.0
    return float(loss), dlogits
