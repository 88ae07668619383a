"""Mutant: sample draws from torch's global generator, ignoring the one (or the seed) it was given.

Misconception: torch.multinomial "is random anyway"; but without generator= the same seed
gives different text on every call, so no run can be reproduced (and generate, which
relies on sample, is not reproducible either).
"""


def sample(logits, generator=None):
    probs = logits.softmax(dim=-1).reshape(-1, logits.shape[-1])
    return torch.multinomial(probs, 1).reshape(logits.shape[:-1])
