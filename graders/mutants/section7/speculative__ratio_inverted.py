"""Mutant: the acceptance test is u <= q(x) / p(x).

Misconception: the ratio of the two models is remembered, its orientation is not. With
q/p, the tokens the draft over-proposes are the ones always kept, so the output leans
towards the draft instead of the target.
"""


def speculative_step(p, q, draft_tokens, uniforms, generator=None):
    drafts = [int(x) for x in draft_tokens.tolist()]
    for i, x in enumerate(drafts):
        if not bool(uniforms[i] <= q[i, x] / p[i, x]):
            last = torch.multinomial(residual_distribution(p[i], q[i]), 1, generator=generator)
            return torch.tensor(drafts[:i] + [int(last)], dtype=torch.long)
    bonus = torch.multinomial(p[len(drafts)], 1, generator=generator)
    return torch.tensor(drafts + [int(bonus)], dtype=torch.long)
