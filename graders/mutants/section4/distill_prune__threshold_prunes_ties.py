"""Mutant: everything at or below the k-th smallest score is pruned (a threshold).

Misconception: pruning k weights is "keep |w| > the k-th smallest |w|". With ties at
that value (quantised or clipped weights, whole rows of equal norm) it prunes every tied
weight, more than k; the exercise prunes exactly k, the lower index first.
"""


def _smallest_k_mask(scores, k):
    if k == 0:
        return torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    threshold = torch.kthvalue(scores, k).values
    return scores > threshold
