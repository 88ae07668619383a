"""Exercise 7.4: Speculative decoding (reference).

A cheap draft model proposes ``gamma`` tokens; the target model scores all of them in
one call; draft token i is kept with probability min(1, p_i(x) / q_i(x)); the first
rejected one is replaced by a draw from the residual norm(max(0, p_i - q_i)), and when
every draft survives, the target's next distribution p_gamma gives one bonus token.
The tokens that come out are distributed exactly as if the target had sampled them one
at a time (Leviathan et al. 2023; Chen et al. 2023).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def residual_distribution(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """norm(max(0, p - q)) along the last axis; ``p`` itself on a row where that has no mass."""
    positive = torch.clamp(p - q, min=0)
    mass = positive.sum(dim=-1, keepdim=True)
    has_mass = mass > 0
    return torch.where(has_mass, positive / torch.where(has_mass, mass, torch.ones_like(mass)), p)


def speculative_step(
    p: torch.Tensor,
    q: torch.Tensor,
    draft_tokens: torch.Tensor,
    uniforms: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The tokens one round emits: the accepted drafts, then one token from the residual
    (at the first rejection) or from p[gamma] (the bonus, when every draft is accepted)."""
    drafts = [int(x) for x in draft_tokens.tolist()]
    p_list, q_list = p.tolist(), q.tolist()  # plain floats: cheaper to read one by one than tensors
    for i, (x, u) in enumerate(zip(drafts, uniforms.tolist())):
        p_x, q_x = p_list[i][x], q_list[i][x]
        if not (p_x > 0 and u * q_x <= p_x):  # rejected: p_x / q_x < u
            last = torch.multinomial(residual_distribution(p[i], q[i]), 1, generator=generator)
            return torch.tensor(drafts[:i] + [int(last)], dtype=torch.long)
    bonus = torch.multinomial(p[len(drafts)], 1, generator=generator)
    return torch.tensor(drafts + [int(bonus)], dtype=torch.long)


def speculative_rounds(
    p: torch.Tensor, q: torch.Tensor, num_rounds: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``num_rounds`` independent rounds with the same rows: drafts drawn from q, uniforms
    from U[0, 1), each round's tokens padded with -1 to gamma + 1."""
    gamma = q.shape[0]
    if num_rounds == 0:
        return torch.full((0, gamma + 1), -1, dtype=torch.long)
    drafts = torch.multinomial(q, num_rounds, replacement=True, generator=generator).T  # (rounds, gamma)
    uniforms = torch.rand(num_rounds, gamma, generator=generator, dtype=torch.float64)
    rows = []
    for r in range(num_rounds):
        tokens = speculative_step(p, q, drafts[r], uniforms[r], generator).tolist()
        rows.append(tokens + [-1] * (gamma + 1 - len(tokens)))
    return torch.tensor(rows, dtype=torch.long)


def speculative_generate(
    target_fn: Callable[[torch.Tensor], torch.Tensor],
    draft_fn: Callable[[torch.Tensor], torch.Tensor],
    prompt: torch.Tensor,
    max_new_tokens: int,
    gamma: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``max_new_tokens`` tokens after ``prompt``, distributed as the target's own samples."""
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
            p_rows = target_fn(drafted)[
                start - 1 :
            ]  # row start - 1 + i judges draft i; the last is the bonus
            uniforms = torch.rand(gamma, generator=generator, dtype=torch.float64)
            emitted = speculative_step(p_rows, torch.stack(q_rows), drafted[start:], uniforms, generator)
            tokens = torch.cat([tokens, emitted])
    return tokens[n_prompt : n_prompt + max_new_tokens]
