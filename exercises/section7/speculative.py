"""Exercise 7.4: Speculative decoding.

A small *draft* model q proposes ``gamma`` tokens, one after another; the large *target*
model p scores all of them in ONE call; a rejection rule keeps a prefix of the drafts and
adds one token of the target's. Done right, the tokens that come out are distributed
exactly as if the target had sampled them one by one (Leviathan et al. 2023, Chen et al.
2023), yet the target runs once per round instead of once per token.

Replace every ``raise NotImplementedError``, then run

    pytest exercises/section7/test_speculative.py      (or: llmkit check 7.4)

Conventions (the tests rely on them):

* Probabilities are rows over a vocabulary of V tokens (float32 or float64, each row
  sums to 1). Tokens are int64 ids in [0, V).
* Draft token i is ACCEPTED when ``p_i(x) > 0 and u_i * q_i(x) <= p_i(x)``: that is
  u_i <= p_i(x) / q_i(x) without the division, so a token the draft gave probability 0
  (q_i(x) = 0 < p_i(x)) is always accepted, and a token the target gives probability 0
  is never accepted, not even with u_i = 0.
* Every draw from ``generator`` in ``speculative_step`` is exactly one call
  ``torch.multinomial(row, 1, generator=generator)`` on a 1-D row. The tests replay that
  call with a generator in the same state, so draw nothing else from it there.
* ``generator=None`` means torch's global generator.

Nothing is banned: there is no library version of this to call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def residual_distribution(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The distribution a rejected draft token is replaced from: norm(max(0, p - q)).

    p, q: (..., V) float tensors of the same shape and dtype (rows that sum to 1).
    Returns (..., V), same dtype: max(0, p - q) divided by its sum along the last axis,
    so every returned row sums to 1.

    A row where max(0, p - q) is all zeros (p <= q everywhere: for two distributions
    that means p == q) has nothing to normalise: return p's row there. A real rejection
    never lands there (see ``speculative_step``), but the function must not return NaN.
    """
    raise NotImplementedError("exercise 7.4: write residual_distribution()")


def speculative_step(
    p: torch.Tensor,
    q: torch.Tensor,
    draft_tokens: torch.Tensor,
    uniforms: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One round of speculative sampling: which drafts survive, and the one token after them.

    p:            (gamma + 1, V) the target's distributions: p[i] for the position of draft
                  token i (given everything before it), p[gamma] for the position after
                  the last draft.
    q:            (gamma, V) the draft's distributions; draft_tokens[i] was drawn from q[i].
    draft_tokens: (gamma,) int64, gamma >= 1.
    uniforms:     (gamma,) floats in [0, 1]; uniforms[i] decides draft token i.
    generator:    the torch.Generator the one final draw uses (None: torch's global one).

    Go through i = 0, 1, ..., gamma - 1 and accept draft token x = draft_tokens[i] while
    ``p[i, x] > 0 and uniforms[i] * q[i, x] <= p[i, x]``. At the first draft that is not
    accepted, draw one token from residual_distribution(p[i], q[i]) and stop: the drafts
    after it are dropped whatever their uniforms say. If all gamma are accepted, draw a
    bonus token from p[gamma]. Either way the draw is exactly one
    ``torch.multinomial(row, 1, generator=generator)``.

    Returns a 1-D int64 tensor of length k + 1 (k = number of accepted drafts, 0..gamma):
    draft_tokens[:k], then the drawn token. The inputs are left unchanged.

    Why the residual is never empty at a rejection: a rejection means u * q_i(x) > p_i(x)
    with u <= 1, so p_i(x) < q_i(x) there; since both rows sum to 1, p_i must exceed q_i
    somewhere else. Only a draft token that q_i itself gives probability 0 (and p_i too)
    can be rejected with p_i == q_i; residual_distribution then returns p_i.
    """
    raise NotImplementedError("exercise 7.4: write speculative_step()")


def speculative_rounds(
    p: torch.Tensor, q: torch.Tensor, num_rounds: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``num_rounds`` independent rounds of speculative sampling with the same rows.

    p: (gamma + 1, V), q: (gamma, V) as in ``speculative_step``. For each round, draw
    draft token i from q[i] (each independently, torch.multinomial), gamma uniforms in
    [0, 1) (torch.rand), and call your ``speculative_step``.

    Returns (num_rounds, gamma + 1) int64: row r holds round r's tokens, padded with -1
    after them. In what order you draw from ``generator`` is up to you: the tests look at
    the distribution of the rounds (50 000 of them in the hidden tests: a loop over
    speculative_step is fine).
    """
    raise NotImplementedError("exercise 7.4: write speculative_rounds()")


def speculative_generate(
    target_fn: Callable[[torch.Tensor], torch.Tensor],
    draft_fn: Callable[[torch.Tensor], torch.Tensor],
    prompt: torch.Tensor,
    max_new_tokens: int,
    gamma: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Generate ``max_new_tokens`` tokens after ``prompt`` by speculative decoding.

    target_fn, draft_fn: models. Called on a 1-D int64 tensor of n tokens, each returns an
        (n, V) float tensor of probabilities whose row j is the model's distribution of the
        token that follows tokens[:j + 1] (like softmax(logits) of a causal LM at every
        position). In the tests they are small torch modules.
    prompt: (n_prompt,) int64, n_prompt >= 1.
    gamma: draft tokens per round, >= 1.

    Each round: draft gamma tokens one at a time (call draft_fn on the sequence so far,
    draw the next token from its last row with torch.multinomial), call target_fn ONCE on
    the sequence with the drafts appended, take the gamma + 1 rows that judge the drafts
    and follow them, and let ``speculative_step`` decide (uniforms from torch.rand).

    Returns the new tokens only: a 1-D int64 tensor of exactly ``max_new_tokens`` tokens
    (a last round that emits more is cut; max_new_tokens = 0 gives an empty tensor).
    ``prompt`` is left unchanged. The returned tokens must be distributed exactly as
    tokens sampled from target_fn one at a time.
    """
    raise NotImplementedError("exercise 7.4: write speculative_generate()")
