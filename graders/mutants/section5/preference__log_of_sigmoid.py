"""Mutant: the loss is computed as -torch.log(torch.sigmoid(z)).

Misconception: it is the formula as written on paper. But sigmoid(z) underflows to 0
for z below about -100 (float32) or -745 (float64), and log(0) = -inf: one pair with a
large negative margin makes the loss infinite and the gradients NaN.
"""


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.1):
    chosen = beta * (policy_chosen - ref_chosen.detach())
    rejected = beta * (policy_rejected - ref_rejected.detach())
    loss = -torch.log(torch.sigmoid(chosen - rejected)).mean()
    return loss, chosen.detach(), rejected.detach()
