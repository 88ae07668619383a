"""Mutant: the margin is rejected minus chosen.

Misconception: the arguments come in the order (chosen, rejected) but the sign of the
margin is easy to flip when writing -log sigmoid(...): the loss then rewards the policy
for preferring the rejected answers.
"""


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.1):
    chosen = beta * (policy_chosen - ref_chosen.detach())
    rejected = beta * (policy_rejected - ref_rejected.detach())
    loss = -F.logsigmoid(rejected - chosen).mean()
    return loss, chosen.detach(), rejected.detach()
