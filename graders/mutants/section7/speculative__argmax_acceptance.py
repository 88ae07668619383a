"""Mutant: a draft token is accepted when it is the target's most likely token.

Misconception: verification means "would the target have produced this token?", so the
draft is checked against the target's argmax. That is right for greedy decoding only:
when sampling, a token the target gives 30% must be kept 30% of the time, not never.
"""


def speculative_step(p, q, draft_tokens, uniforms, generator=None):
    drafts = [int(x) for x in draft_tokens.tolist()]
    for i, x in enumerate(drafts):
        if x != int(p[i].argmax()):
            last = torch.multinomial(residual_distribution(p[i], q[i]), 1, generator=generator)
            return torch.tensor(drafts[:i] + [int(last)], dtype=torch.long)
    bonus = torch.multinomial(p[len(drafts)], 1, generator=generator)
    return torch.tensor(drafts + [int(bonus)], dtype=torch.long)
