"""Mutant: a rejected draft is replaced by a residual token and the loop goes on judging
the later drafts.

Misconception: each draft is judged on its own. But draft i + 1 was proposed after
draft i; once draft i is replaced, the later drafts continue a prefix that was never
emitted, and the round must stop there.
"""


def speculative_step(p, q, draft_tokens, uniforms, generator=None):
    out = []
    for i, (x, u) in enumerate(zip(draft_tokens.tolist(), uniforms.tolist())):
        p_x, q_x = float(p[i, x]), float(q[i, x])
        if p_x > 0 and u * q_x <= p_x:
            out.append(int(x))
        else:
            out.append(int(torch.multinomial(residual_distribution(p[i], q[i]), 1, generator=generator)))
    out.append(int(torch.multinomial(p[len(out)], 1, generator=generator)))
    return torch.tensor(out, dtype=torch.long)
