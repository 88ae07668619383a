"""Mutant: the gradient of each negative term has the wrong sign (-σ(s_k) instead of +σ(s_k)).

Misconception: d/ds log σ(s) = 1 - σ(s) and the negative term is log σ(-s), so the
learner writes the outside word's factor σ(s_o) - 1 correctly and then negates the
negatives' factor once too often. The loss is right; the gradients push negative
words towards the center word instead of away from it.
"""


def sgns_loss_and_grads(center_vec, outside_idx, negative_idx, U):
    v = np.asarray(center_vec, dtype=np.float64)
    U = np.asarray(U, dtype=np.float64)
    neg = np.asarray(negative_idx, dtype=np.int64).reshape(-1)
    u_o, u_neg = U[outside_idx], U[neg]
    s_o, s_neg = u_o @ v, u_neg @ v
    loss = -(log_sigmoid(s_o) + log_sigmoid(-s_neg).sum())
    g_o = sigmoid(s_o) - 1.0
    g_neg = -sigmoid(s_neg)  # the bug: d/ds [-log σ(-s)] is +σ(s)
    grad_center = g_o * u_o + g_neg @ u_neg
    grad_U = np.zeros_like(U)
    grad_U[outside_idx] += g_o * v
    np.add.at(grad_U, neg, g_neg[:, None] * v)
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
    g_neg = -sigmoid(s_neg)  # the bug
    grad_centers = g_o[:, None] * u_o + np.einsum("bk,bkd->bd", g_neg, u_neg)
    grad_U = np.zeros_like(U)
    np.add.at(grad_U, out, g_o[:, None] * C)
    np.add.at(grad_U, neg, g_neg[:, :, None] * C[:, None, :])
    return float(loss), grad_centers, grad_U
