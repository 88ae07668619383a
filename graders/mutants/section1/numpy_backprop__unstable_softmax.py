"""Mutant: softmax cross-entropy straight from the formula, exp(z) / sum(exp(z)).

Misconception: the textbook formula is safe in floating point. exp(1000) is inf,
and inf / inf is NaN.
"""


def softmax_cross_entropy(logits, labels):
    n = logits.shape[0]
    exps = np.exp(logits)
    probs = exps / exps.sum(axis=1, keepdims=True)
    loss = -np.log(probs[np.arange(n), labels]).mean()
    dlogits = probs.copy()
    dlogits[np.arange(n), labels] -= 1.0
    return float(loss), dlogits / n
