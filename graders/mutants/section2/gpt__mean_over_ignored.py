"""Mutant: ignored targets are zeroed but still counted in the mean.

Misconception: masking the losses is enough. Dividing by every position makes the loss
depend on how much padding a batch holds; the mean runs over the targets that count.
"""


def cross_entropy(logits, targets, ignore_index=-100):
    logits = logits.reshape(-1, logits.shape[-1])
    targets = targets.reshape(-1)
    keep = targets != ignore_index
    shifted = logits - logits.amax(dim=-1, keepdim=True).detach()
    log_norm = shifted.exp().sum(dim=-1).log()
    picked = shifted.gather(1, targets.clamp(min=0).unsqueeze(1)).squeeze(1)
    return ((log_norm - picked) * keep).mean()
