"""Mutant: when every draft is accepted, the round emits the gamma drafts and nothing more.

Misconception: the target was only asked to check the drafts. Its last row p[gamma]
comes for free with the same call, and skipping it leaves a round one token short
(gamma instead of gamma + 1 tokens per target call at best).
"""


def speculative_step(p, q, draft_tokens, uniforms, generator=None):
    drafts = [int(x) for x in draft_tokens.tolist()]
    for i, (x, u) in enumerate(zip(drafts, uniforms.tolist())):
        p_x, q_x = float(p[i, x]), float(q[i, x])
        if not (p_x > 0 and u * q_x <= p_x):
            last = torch.multinomial(residual_distribution(p[i], q[i]), 1, generator=generator)
            return torch.tensor(drafts[:i] + [int(last)], dtype=torch.long)
    return torch.tensor(drafts, dtype=torch.long)
