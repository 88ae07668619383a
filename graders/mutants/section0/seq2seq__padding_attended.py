"""Mutant: the mask is never used; padded positions take part in the softmax.

Misconception: the padding is "just zeros" and cannot matter. Its keys are encoder
outputs like any other (or zeros, which still score v . tanh(W_q q)), so they take a
share of the weights and the result depends on how much padding the batch has.
"""


def additive_attention(query, keys, mask, W_q, W_k, v):
    scores = torch.tanh((query @ W_q.T).unsqueeze(1) + keys @ W_k.T) @ v
    weights = torch.softmax(scores, dim=-1)
    context = (weights.unsqueeze(1) @ keys).squeeze(1)
    return context, weights
