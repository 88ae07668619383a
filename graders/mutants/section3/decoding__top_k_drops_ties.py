"""Mutant: top-k keeps exactly the k indices torch.topk returns, cutting ties at the k-th value.

Misconception: "top-k keeps k tokens" taken literally. transformers keeps every token whose
logit is >= the k-th largest value, so tokens tied with the k-th all survive; scattering
topk's indices keeps an arbitrary subset of them.
"""


def top_k_filter(logits, k, min_keep=1):
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValueError(f"top_k must be a positive int, got {k!r}")
    k = min(max(k, min_keep), logits.shape[-1])
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, logits.topk(k, dim=-1).indices, True)
    return logits.masked_fill(~keep, float("-inf"))
