"""Mutant: cross-entropy computes log(sum(exp(logits))) without subtracting the maximum.

Misconception: the formula on paper is the implementation. exp(1000) overflows to inf
in float32 and float64 alike; the log-sum-exp trick subtracts each row's max first.
"""


def cross_entropy(logits, targets, ignore_index=-100):
    logits = logits.reshape(-1, logits.shape[-1])
    targets = targets.reshape(-1)
    keep = targets != ignore_index
    log_norm = logits.exp().sum(dim=-1).log()
    picked = logits.gather(1, targets.clamp(min=0).unsqueeze(1)).squeeze(1)
    return (log_norm - picked)[keep].mean()
