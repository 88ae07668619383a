"""Mutant: the loss of each sequence is averaged over its own tokens, then the
sequences' losses are averaged.

Misconception: "average per example, then over the batch" is how most losses are
reduced. For token losses it weighs a 2-token response as much as a 200-token one,
and it is not F.cross_entropy's mean (nor Hugging Face's).
"""


def sft_loss(logits, labels, ignore_index=-100):
    vocab = logits.shape[-1]
    targets = labels[:, 1:]
    nll = F.cross_entropy(
        logits[:, :-1].reshape(-1, vocab), targets.reshape(-1), ignore_index=ignore_index, reduction="none"
    ).reshape(targets.shape)
    counted = (targets != ignore_index).sum(dim=1)
    return (nll.sum(dim=1) / counted).mean()
