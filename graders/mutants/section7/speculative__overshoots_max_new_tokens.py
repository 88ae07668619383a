"""Mutant: generation returns every token of the last round, past max_new_tokens.

Misconception: the loop stops once enough tokens exist, so the length is right. But a
round emits up to gamma + 1 tokens at once: the last one overshoots unless it is cut.
"""


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
                drafted = torch.cat([drafted, torch.multinomial(q_row, 1, generator=generator)])
            p_rows = target_fn(drafted)[start - 1 :]
            uniforms = torch.rand(gamma, generator=generator, dtype=torch.float64)
            emitted = speculative_step(p_rows, torch.stack(q_rows), drafted[start:], uniforms, generator)
            tokens = torch.cat([tokens, emitted])
    return tokens[n_prompt:]
