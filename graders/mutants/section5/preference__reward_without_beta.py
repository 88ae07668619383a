"""Mutant: the rewards returned are the log-ratios pi - ref, without beta.

Misconception: beta is "part of the loss", so the rewards are logged without it. DPO's
implicit reward is beta * log(pi / ref): that is what trainers (TRL's rewards/chosen,
rewards/margins) report, and what the loss compares.
"""


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.1):
    chosen = policy_chosen - ref_chosen.detach()
    rejected = policy_rejected - ref_rejected.detach()
    loss = -F.logsigmoid(beta * (chosen - rejected)).mean()
    return loss, chosen.detach(), rejected.detach()
