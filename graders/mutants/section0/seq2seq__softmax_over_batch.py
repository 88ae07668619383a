"""Mutant: the softmax of the (B, S) scores runs over dim=0, the batch.

Misconception: written first for one sentence, where the scores were (S,) and dim=0 was
right; the batch axis arrived in front and the softmax axis stayed where it was. Each
position's weights now sum to 1 across the batch, not each row across its positions.
"""


def additive_attention(query, keys, mask, W_q, W_k, v):
    scores = torch.tanh((query @ W_q.T).unsqueeze(1) + keys @ W_k.T) @ v
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=0)
    context = (weights.unsqueeze(1) @ keys).squeeze(1)
    return context, weights
