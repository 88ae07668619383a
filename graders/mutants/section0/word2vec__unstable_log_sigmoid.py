"""Mutant: the loss computes log σ(-s) as log(1 - σ(s)).

Misconception: σ(-s) = 1 - σ(s) on paper, so either form will do. In floating point
σ(s) rounds to exactly 1.0 once s > ~37, 1 - σ(s) is 0.0 and its log is -inf: a negative
word scored at +50 makes the loss inf. The gradients, which need only σ, are right.
"""


def naive_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def sgns_loss_and_grads(center_vec, outside_idx, negative_idx, U):
    v = np.asarray(center_vec, dtype=np.float64)
    U = np.asarray(U, dtype=np.float64)
    neg = np.asarray(negative_idx, dtype=np.int64).reshape(-1)
    u_o, u_neg = U[outside_idx], U[neg]
    s_o, s_neg = u_o @ v, u_neg @ v
    with np.errstate(divide="ignore", over="ignore"):
        loss = -(np.log(naive_sigmoid(s_o)) + np.log(1.0 - naive_sigmoid(s_neg)).sum())  # the bug
    g_o = sigmoid(s_o) - 1.0
    g_neg = sigmoid(s_neg)
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
    with np.errstate(divide="ignore", over="ignore"):
        loss = -(np.log(naive_sigmoid(s_o)).sum() + np.log(1.0 - naive_sigmoid(s_neg)).sum())  # the bug
    g_o = sigmoid(s_o) - 1.0
    g_neg = sigmoid(s_neg)
    grad_centers = g_o[:, None] * u_o + np.einsum("bk,bkd->bd", g_neg, u_neg)
    grad_U = np.zeros_like(U)
    np.add.at(grad_U, out, g_o[:, None] * C)
    np.add.at(grad_U, neg, g_neg[:, :, None] * C[:, None, :])
    return float(loss), grad_centers, grad_U
