"""Mutant: top_k_filter sorts the whole vocabulary to find the k-th largest logit.

Misconception: sorting is the obvious way to find "the k largest"; it gives the right
answer but does O(V log V) work on 50 257 logits per row where torch.topk needs only the
k best, many times slower than transformers' TopKLogitsWarper.
"""


def top_k_filter(logits, k, min_keep=1):
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ValueError(f"top_k must be a positive int, got {k!r}")
    k = min(max(k, min_keep), logits.shape[-1])
    kth = logits.sort(dim=-1, descending=True).values[..., k - 1 : k]
    return logits.masked_fill(logits < kth, float("-inf"))
