"""Mutant: top_k_filter writes -inf into the logits it was given and returns them.

Misconception: the filter "returns the filtered logits", and an in-place masked
assignment does that with no copy; but the caller's tensor is now damaged (the raw
logits a caller keeps for log-probabilities, a beam's scores, a second filter).
"""


def top_k_filter(logits, k, min_keep=1):
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValueError(f"top_k must be a positive int, got {k!r}")
    k = min(max(k, min_keep), logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    logits[logits < kth] = float("-inf")
    return logits
