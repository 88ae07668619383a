"""Mutant: logits[:, t] scored against labels[:, t], in sft_loss and sequence_logprob.

Misconception: logits and labels have the same shape (B, T), so they look paired
position by position. But the logits at t are the model's guess for the NEXT token;
without the shift the model is trained to copy its input.
"""


def sft_loss(logits, labels, ignore_index=-100):
    vocab = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1), ignore_index=ignore_index)


def sequence_logprob(logits, labels, ignore_index=-100):
    logp = logits.log_softmax(dim=-1)
    counted = labels != ignore_index
    picked = logp.gather(-1, torch.where(counted, labels, 0).unsqueeze(-1)).squeeze(-1)
    return torch.where(counted, picked, torch.zeros_like(picked)).sum(dim=-1)
