"""Mutant: the softmax runs over every position, then the weights are multiplied by the mask.

Misconception: "zero the padding" is read as zeroing the weights. The padding's share of
the softmax is simply lost: each row now sums to less than 1, and the context shrinks
with the amount of padding.
"""


def additive_attention(query, keys, mask, W_q, W_k, v):
    scores = torch.tanh((query @ W_q.T).unsqueeze(1) + keys @ W_k.T) @ v
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask
    context = (weights.unsqueeze(1) @ keys).squeeze(1)
    return context, weights
