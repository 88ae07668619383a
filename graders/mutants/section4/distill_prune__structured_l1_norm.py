"""Mutant: structured_prune ranks slices by their L1 norm (sum of |w|).

Misconception: magnitude pruning is L1 (l1_unstructured), so structured pruning is too.
For whole slices the exercise, like ln_structured(n=2), uses the L2 norm, which ranks a
slice with one large weight above a slice of many small ones of the same sum.
"""


def structured_prune(W, amount, dim=0):
    if W.dim() < 2:
        raise ValueError(f"structured pruning needs 2 or more dimensions, got shape {tuple(W.shape)}")
    axis = range(W.dim())[dim]
    with torch.no_grad():
        others = [d for d in range(W.dim()) if d != axis]
        norms = W.abs().sum(dim=others)
        keep = _smallest_k_mask(norms, _count(amount, W.shape[axis]))
        shape = [1] * W.dim()
        shape[axis] = W.shape[axis]
        return keep.reshape(shape).expand(W.shape).clone()
