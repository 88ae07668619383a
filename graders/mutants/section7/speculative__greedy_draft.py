"""Mutant: the draft model proposes its most likely token instead of a sample.

Misconception: the draft is "just a guess", so its best guess is proposed. The rule
min(1, p(x)/q(x)) with the residual max(0, p - q) corrects drafts that were drawn from q;
drafts drawn from anything else (here a one-hot) leave the output biased.
"""


def speculative_rounds(p, q, num_rounds, generator=None):
    gamma = q.shape[0]
    out = torch.full((num_rounds, gamma + 1), -1, dtype=torch.long)
    drafts = q.argmax(dim=-1)
    for r in range(num_rounds):
        uniforms = torch.rand(gamma, generator=generator, dtype=torch.float64)
        tokens = speculative_step(p, q, drafts, uniforms, generator)
        out[r, : tokens.shape[0]] = tokens
    return out


def speculative_generate(target_fn, draft_fn, prompt, max_new_tokens, gamma, generator=None):
    tokens = prompt.to(torch.long)
    n_prompt = tokens.shape[0]
    with torch.no_grad():
        while tokens.shape[0] - n_prompt < max_new_tokens:
            start = tokens.shape[0]
            drafted = tokens
            q_rows = []
            for _ in range(gamma):
                q_row = draft_fn(drafted)[-1]
                q_rows.append(q_row)
                drafted = torch.cat([drafted, q_row.argmax().reshape(1)])
            p_rows = target_fn(drafted)[start - 1 :]
            uniforms = torch.rand(gamma, generator=generator, dtype=torch.float64)
            emitted = speculative_step(p_rows, torch.stack(q_rows), drafted[start:], uniforms, generator)
            tokens = torch.cat([tokens, emitted])
    return tokens[n_prompt : n_prompt + max_new_tokens]
