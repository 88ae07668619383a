"""Mutant: sequence_logprob returns the mean log-probability of the response's tokens.

Misconception: a "per-token" log-probability looks better normalised across lengths.
But log p(response) is the sum; averaging changes DPO into another objective (a
length-normalised one, as SimPO uses) and changes every reward.
"""


def sequence_logprob(logits, labels, ignore_index=-100):
    logp = logits[:, :-1].log_softmax(dim=-1)
    targets = labels[:, 1:]
    counted = targets != ignore_index
    picked = logp.gather(-1, torch.where(counted, targets, 0).unsqueeze(-1)).squeeze(-1)
    total = torch.where(counted, picked, torch.zeros_like(picked)).sum(dim=-1)
    return total / counted.sum(dim=-1)
