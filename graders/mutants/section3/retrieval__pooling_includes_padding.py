"""Mutant: mean pooling averages every position, padding included.

Misconception: the padded positions are zeros, or too few to matter. They hold whatever
the encoder computed there, and a short text in a batch of long ones is mostly padding:
its vector then depends on what it was batched with.
"""


def mean_pool(token_embeddings, attention_mask):
    return token_embeddings.mean(dim=1)
