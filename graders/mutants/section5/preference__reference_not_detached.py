"""Mutant: the reference log-probabilities are used as they come, not detached.

Misconception: "the reference model is frozen anyway". The values are right, but when
the caller computed them with autograd on, the loss's gradient flows into them and on
into the reference model (which an optimiser over all parameters then moves): the
anchor of the KL penalty drifts with the policy.
"""


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.1):
    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen - rejected).mean()
    return loss, chosen.detach(), rejected.detach()
