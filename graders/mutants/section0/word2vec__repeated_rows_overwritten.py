"""Mutant: grad_U[idx] += rows instead of np.add.at(grad_U, idx, rows).

Misconception: fancy indexing looks like a loop over the indices, so a word drawn twice
as a negative (or the outside word drawn as a negative) should get both terms. numpy
buffers the operation: each repeated row is written once, and one term is lost.
"""


def sgns_loss_and_grads(center_vec, outside_idx, negative_idx, U):
    v = np.asarray(center_vec, dtype=np.float64)
    U = np.asarray(U, dtype=np.float64)
    neg = np.asarray(negative_idx, dtype=np.int64).reshape(-1)
    u_o, u_neg = U[outside_idx], U[neg]
    s_o, s_neg = u_o @ v, u_neg @ v
    loss = -(log_sigmoid(s_o) + log_sigmoid(-s_neg).sum())
    g_o = sigmoid(s_o) - 1.0
    g_neg = sigmoid(s_neg)
    grad_center = g_o * u_o + g_neg @ u_neg
    grad_U = np.zeros_like(U)
    grad_U[outside_idx] += g_o * v
    grad_U[neg] += g_neg[:, None] * v  # the bug: a repeated index keeps one term
    return float(loss), grad_center, grad_U


def sgns_loss_and_grads_batch(center_vecs, outside_idx, negative_idx, U):
    C = np.asarray(center_vecs, dtype=np.float64)
    U = np.asarray(U, dtype=np.float64)
    out = np.asarray(outside_idx, dtype=np.int64).reshape(-1)
    neg = np.asarray(negative_idx, dtype=np.int64).reshape(len(out), -1)
    u_o, u_neg = U[out], U[neg]
    s_o = np.einsum("bd,bd->b", u_o, C)
    s_neg = np.einsum("bkd,bd->bk", u_neg, C)
    loss = -(log_sigmoid(s_o).sum() + log_sigmoid(-s_neg).sum())
    g_o = sigmoid(s_o) - 1.0
    g_neg = sigmoid(s_neg)
    grad_centers = g_o[:, None] * u_o + np.einsum("bk,bkd->bd", g_neg, u_neg)
    grad_U = np.zeros_like(U)
    grad_U[out] += g_o[:, None] * C  # the bug, twice
    grad_U[neg] += g_neg[:, :, None] * C[:, None, :]
    return float(loss), grad_centers, grad_U
