"""Mutant: the batched gradient loops over the B pairs in Python, one call each.

Misconception: reusing the one-pair function is the simplest correct batch. It is
correct, but every pair pays Python's overhead and allocates a (V, D) grad_U of its
own: at B = 4096 and V = 10_000 that is far slower than one vectorised pass.
"""


def sgns_loss_and_grads_batch(center_vecs, outside_idx, negative_idx, U):
    U = np.asarray(U, dtype=np.float64)
    total, grad_centers, grad_U = 0.0, np.zeros(np.shape(center_vecs)), np.zeros_like(U)
    for b in range(len(outside_idx)):  # the bug: a Python loop over the pairs
        loss, grad_centers[b], grad = sgns_loss_and_grads(
            center_vecs[b], int(outside_idx[b]), negative_idx[b], U
        )
        total += loss
        grad_U += grad
    return total, grad_centers, grad_U
