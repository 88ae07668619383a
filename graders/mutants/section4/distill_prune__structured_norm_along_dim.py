"""Mutant: structured_prune takes the norm along `dim` and prunes the slices that remain.

Misconception: `dim` is where the norm runs, as in W.norm(dim=dim). In
torch.nn.utils.prune it names the axis whose slices are pruned: dim=0 on a Linear weight
removes rows (output units), each ranked by its norm over the other dims.
"""


def structured_prune(W, amount, dim=0):
    if W.dim() < 2:
        raise ValueError(f"structured pruning needs 2 or more dimensions, got shape {tuple(W.shape)}")
    axis = range(W.dim())[dim]
    with torch.no_grad():
        norms = torch.linalg.vector_norm(W, ord=2, dim=axis)  # one norm per fibre along `dim`
        keep = _smallest_k_mask(norms.flatten(), _count(amount, norms.numel())).reshape(norms.shape)
        return keep.unsqueeze(axis).expand(W.shape).clone()
