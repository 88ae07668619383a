"""Grader-only oracles for exercise 7.4 (speculative decoding). They would hand over the
exercise, so they never ship to learners.

* :func:`expected_step` — what ``speculative_step`` must return for given inputs and a
  generator seeded with ``seed``: the acceptance rule of the stub's docstring, then the one
  ``torch.multinomial`` draw replayed.
* :func:`round_distribution` — the exact law of one round's output, by enumeration: a sum
  over every draft sequence (probability prod_i q_i(x_i)) and every acceptance event
  (probability min(1, p_i(x_i) / q_i(x_i))), without sampling. :func:`assert_theorem`
  checks that this law gives each emitted token the target's distribution.
"""

from __future__ import annotations

import itertools

import torch


def accepted(p_x: float, q_x: float, u: float) -> bool:
    """The stub's rule: u * q(x) <= p(x), and never a token the target gives probability 0."""
    return p_x > 0 and u * q_x <= p_x


def residual_row(p_row: torch.Tensor, q_row: torch.Tensor) -> torch.Tensor:
    positive = (p_row - q_row).clamp(min=0)
    mass = positive.sum()
    return positive / mass if mass > 0 else p_row


def expected_step(p, q, draft_tokens, uniforms, seed: int) -> list[int]:
    """The tokens ``speculative_step(p, q, draft_tokens, uniforms, Generator().manual_seed(seed))`` emits."""
    generator = torch.Generator().manual_seed(seed)
    drafts = [int(x) for x in draft_tokens]
    for i, (x, u) in enumerate(zip(drafts, uniforms.tolist())):
        if not accepted(float(p[i, x]), float(q[i, x]), u):
            return drafts[:i] + [int(torch.multinomial(residual_row(p[i], q[i]), 1, generator=generator))]
    return drafts + [int(torch.multinomial(p[len(drafts)], 1, generator=generator))]


def round_distribution(p: torch.Tensor, q: torch.Tensor) -> dict[tuple[int, ...], float]:
    """{output tokens: probability} of one round with drafts drawn from q, by enumeration."""
    p, q = p.to(torch.float64), q.to(torch.float64)
    gamma, vocab = q.shape
    law: dict[tuple[int, ...], float] = {}

    def add(tokens: tuple[int, ...], mass: float) -> None:
        law[tokens] = law.get(tokens, 0.0) + mass

    for drafts in itertools.product(range(vocab), repeat=gamma):
        mass = float(torch.prod(q[torch.arange(gamma), torch.tensor(drafts)]))
        if mass == 0:
            continue
        for i, x in enumerate(drafts):
            p_x, q_x = float(p[i, x]), float(q[i, x])
            keep = 0.0 if p_x == 0 else min(1.0, p_x / q_x)
            rejected = mass * (1 - keep)
            if rejected > 0:
                for z, r in enumerate(residual_row(p[i], q[i]).tolist()):
                    if r > 0:
                        add((*drafts[:i], z), rejected * r)
            mass *= keep
            if mass == 0:
                break
        else:
            for z, r in enumerate(p[gamma].tolist()):
                if r > 0:
                    add((*drafts, z), mass * r)
    return law


def assert_theorem(law: dict[tuple[int, ...], float], p: torch.Tensor, atol: float = 1e-6) -> None:
    """The enumerated law gives the j-th token of every round that emits one the target's
    distribution p_j (the speculative sampling theorem): a check of the oracle itself."""
    p = p.to(torch.float64)
    total = sum(law.values())
    assert abs(total - 1) < atol, f"the enumerated law sums to {total}"
    for j in range(p.shape[0]):
        at_j = torch.zeros(p.shape[1], dtype=torch.float64)
        for tokens, mass in law.items():
            if len(tokens) > j:
                at_j[tokens[j]] += mass
        if at_j.sum() > 0:
            got = at_j / at_j.sum()
            assert torch.allclose(got, p[j], atol=atol), f"position {j}: {got.tolist()} != {p[j].tolist()}"
