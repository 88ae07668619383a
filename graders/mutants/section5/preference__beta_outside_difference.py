"""Mutant: beta * (pi_c - ref_c) - (pi_r - ref_r): beta scales the chosen log-ratio only.

Misconception: a precedence slip when the formula is typed on one line without the
outer parentheses: beta must multiply the whole difference of log-ratios.
"""


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.1):
    rc, rr = ref_chosen.detach(), ref_rejected.detach()
    loss = -F.logsigmoid(beta * (policy_chosen - rc) - (policy_rejected - rr)).mean()
    return loss, (beta * (policy_chosen - rc)).detach(), (beta * (policy_rejected - rr)).detach()
