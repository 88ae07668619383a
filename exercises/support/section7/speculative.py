"""Support for exercise 7.4 (speculative decoding): what its public tests, graders,
notebook and `llmkit show` share. It ships to learners, so it holds no speculative
sampler: only closed forms (the residual, the acceptance rate sum_x min(p, q)), the
statistics that compare a learner's rounds with the distribution they must have, the toy
models generation runs on, and the named mistakes, each as the distribution it produces.

* :func:`residual`, :func:`acceptance_rate` — closed forms.
* :func:`rows_case` / :func:`draw_rows` — the (p, q) rows tests draw with hypothesis.
* :class:`Profile` and :func:`target_profile` — what a round's output must look like:
  draft i survives with probability sum_x min(p_i, q_i), and the j-th token of a round
  that got that far is distributed as p_j (the speculative sampling theorem).
* :func:`check_rounds` — ``speculative_rounds`` output against a profile: a binomial test
  per acceptance rate and a chi-square test (scipy) per position; on failure the
  misconceptions' profiles name the likely mistake.
* :func:`bigram_model`, :func:`chain_model`, :func:`check_transitions` — generation on toy
  models (``nn.Embedding`` + ``nn.Softmax``: plain torch modules, so a sandboxed worker
  can receive them) and a chi-square test of the generated text's transitions.
* :data:`MISCONCEPTIONS`, :func:`figure`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from hypothesis import strategies as st
from torch import nn

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    CheckFailure,
    Draw,
    Misconception,
    Misconceptions,
    check_equal,
    unchanged,
)

ALPHA = 1e-6  # significance of every statistical check: a correct sampler fails one about once a million
MIN_EXPECTED = 5.0  # chi-square cells expected fewer times than this are merged into the largest cell

# --- closed forms ------------------------------------------------------------------


def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """norm(max(0, p - q)) along the last axis, and p on a row where that is all zeros."""
    positive = (p - q).clamp(min=0)
    mass = positive.sum(-1, keepdim=True)
    return torch.where(mass > 0, positive / mass.where(mass > 0, torch.ones_like(mass)), p)


def acceptance_rate(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """beta = sum_x min(p(x), q(x)): the probability that a draft drawn from q survives
    (E over x ~ q of min(1, p(x) / q(x)))."""
    return torch.minimum(p, q).sum(-1)


def expected_tokens_per_round(beta: float, gamma: int) -> float:
    """E[tokens one round emits] = 1 + beta + ... + beta^gamma (Leviathan et al., eq. 1)."""
    return float(sum(beta**k for k in range(gamma + 1)))


# --- inputs the public tests and graders draw ----------------------------------------


@st.composite
def rows_case(draw_st, max_vocab: int = 5, max_gamma: int = 3):
    """(V, gamma, dtype, sparse, seed): the shape of one (p, q) pair; sparse rows have zeros."""
    return (
        draw_st(st.integers(2, max_vocab)),
        draw_st(st.integers(1, max_gamma)),
        draw_st(FLOAT_DTYPES),
        draw_st(st.booleans()),
        draw_st(SEEDS),
    )


def _rows(rng: Draw, n: int, vocab: int, sparse: bool) -> torch.Tensor:
    probs = torch.softmax(rng.tensor(n, vocab, dtype=torch.float64, scale=1.5), dim=-1)
    if sparse:
        keep = rng.bool_mask(n, vocab, p_true=0.6)
        keep[torch.arange(n), probs.argmax(-1)] = True  # every row keeps some mass
        probs = probs * keep
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def draw_rows(case) -> tuple[torch.Tensor, torch.Tensor]:
    """p (gamma + 1, V) and q (gamma, V) for a :func:`rows_case`, rows summing to 1."""
    vocab, gamma, dtype, sparse, seed = case
    rng = Draw(seed)
    return _rows(rng, gamma + 1, vocab, sparse).to(dtype), _rows(rng, gamma, vocab, sparse).to(dtype)


def planned_step(p: torch.Tensor, q: torch.Tensor, seed: int, keep: int):
    """Draft tokens and uniforms built so that exactly the first ``keep`` drafts pass the
    rule (fewer when no draft at position ``keep`` can be rejected: p >= q there).

    Returns ``(draft_tokens, uniforms, k)``: drafts 0..k-1 get u at most 0.99 p/q (kept
    with room to spare); draft k < gamma, a token with p < 0.99 q, gets u above 1.01 p/q
    (rejected); the drafts after it get u = 0 and tokens the target allows, so only
    stopping at the first rejection drops them. A draft's token is one q allows where
    possible. Margins of 1%, so float32 rounding cannot flip a decision."""
    rng = Draw(seed).rng
    gamma = q.shape[0]
    p64, q64 = p.to(torch.float64), q.to(torch.float64)
    k = min(keep, gamma)
    while k < gamma and not bool((p64[k] < 0.99 * q64[k]).any()):
        k += 1
    drafts, uniforms = [], []
    for i in range(gamma):
        if i == k:
            candidates = (p64[i] < 0.99 * q64[i]).nonzero().flatten().tolist()
            x = int(rng.choice(candidates))
            ratio = float(p64[i, x] / q64[i, x])
            u = float(rng.uniform(1.01 * ratio, 1.0))
        else:
            allowed = ((p64[i] > 0) & (q64[i] > 0)).nonzero().flatten().tolist() or (
                (p64[i] > 0).nonzero().flatten().tolist()
            )
            x = int(rng.choice(allowed))
            ratio = float(p64[i, x] / q64[i, x]) if q64[i, x] > 0 else float("inf")
            if i > k:
                u = 0.0  # would be accepted: only stopping at the rejection drops it
            elif ratio >= 1 and rng.random() < 0.3:
                u = 1.0  # p >= q: kept whatever u is
            else:
                u = float(rng.uniform(0, 0.99)) * min(1.0, ratio)
        drafts.append(x)
        uniforms.append(u)
    return torch.tensor(drafts, dtype=torch.long), torch.tensor(uniforms, dtype=p.dtype), k


# --- what a round's output must look like --------------------------------------------


@dataclass
class Profile:
    """The law of one round's output, position by position.

    ``goes_on[i]``: probability that a round that reached draft position i keeps draft i
    AND goes on to emit another token (for the last draft: the bonus). ``tokens[j]``: the
    distribution of a round's j-th token, given the round emitted one (None: it never does).
    """

    goes_on: list[float]
    tokens: list[torch.Tensor | None]


def _f64(p, q):
    return p.to(torch.float64), q.to(torch.float64)


def target_profile(p: torch.Tensor, q: torch.Tensor) -> Profile:
    """The correct law: draft i goes on with probability sum_x min(p_i, q_i), and the j-th
    token of a round is distributed as p_j, the target's own distribution there."""
    p, q = _f64(p, q)
    return Profile([float(b) for b in acceptance_rate(p[:-1], q)], list(p))


def _profile_with_acceptance(p, q, accept) -> Profile:
    """The law of rounds whose draft x at position i survives with probability
    ``accept(p_i, q_i)[x]``, drafts drawn from q and the residual drawn at a rejection."""
    p, q = _f64(p, q)
    goes_on, tokens = [], []
    for i in range(q.shape[0]):
        kept = q[i] * accept(p[i], q[i])
        beta = kept.sum()
        goes_on.append(float(beta))
        tokens.append(kept + (1 - beta) * residual(p[i], q[i]))
    return Profile(goes_on, [*tokens, p[-1]])


def _argmax_acceptance(p, q) -> Profile:
    return _profile_with_acceptance(p, q, lambda pi, qi: (torch.arange(pi.shape[0]) == pi.argmax()).double())


def _ratio_inverted(p, q) -> Profile:
    return _profile_with_acceptance(
        p, q, lambda pi, qi: torch.where(pi > 0, (qi / pi.where(pi > 0, 1.0)).clamp(max=1), 1.0)
    )


def _residual_from_target(p, q) -> Profile:
    p, q = _f64(p, q)
    beta = acceptance_rate(p[:-1], q)
    tokens = [torch.minimum(p[i], q[i]) + (1 - beta[i]) * p[i] for i in range(q.shape[0])]
    return Profile([float(b) for b in beta], [*tokens, p[-1]])


def _no_bonus(p, q) -> Profile:
    law = target_profile(p, q)
    return Profile([*law.goes_on[:-1], 0.0], [*law.tokens[:-1], None])


def _continues_after_rejection(p, q) -> Profile:
    law = target_profile(p, q)  # each position: the draft or a residual token, so still p_i
    return Profile([1.0] * len(law.goes_on), law.tokens)


def _greedy_draft(p, q) -> Profile:
    p, q = _f64(p, q)
    goes_on, tokens = [], []
    for i in range(q.shape[0]):
        best = int(q[i].argmax())  # always drafted
        keep = float(min(1.0, p[i, best] / q[i, best])) if p[i, best] > 0 else 0.0
        one_hot = torch.zeros_like(p[i])
        one_hot[best] = 1.0
        goes_on.append(keep)
        tokens.append(keep * one_hot + (1 - keep) * residual(p[i], q[i]))
    return Profile(goes_on, [*tokens, p[-1]])


# --- the statistics ------------------------------------------------------------------


def pvalue_binomial(k: int, n: int, prob: float) -> float:
    """Two-sided exact binomial test of k successes in n trials at ``prob``: the total
    probability of every outcome no more likely than k (as scipy.stats.binomtest)."""
    prob = min(max(prob, 0.0), 1.0)
    if prob in (0.0, 1.0):
        return 1.0 if k == round(prob * n) else 0.0
    ks = torch.arange(n + 1, dtype=torch.float64)
    log_pmf = (
        torch.lgamma(torch.tensor(n + 1.0, dtype=torch.float64))
        - torch.lgamma(ks + 1)
        - torch.lgamma(n - ks + 1)
        + ks * math.log(prob)
        + (n - ks) * math.log1p(-prob)
    )
    pmf = log_pmf.exp()
    return float(pmf[pmf <= pmf[k] * (1 + 1e-7)].sum().clamp(max=1.0))


def pvalue_chisquare(observed: torch.Tensor, expected: torch.Tensor) -> float:
    """Pearson's chi-square test of ``observed`` counts against ``expected`` ones (same
    total), len - 1 degrees of freedom (as scipy.stats.chisquare)."""
    observed, expected = observed.to(torch.float64), expected.to(torch.float64)
    statistic = ((observed - expected) ** 2 / expected).sum()
    dof = torch.tensor((observed.numel() - 1) / 2, dtype=torch.float64)
    return float(torch.special.gammaincc(dof, statistic / 2))


def _chisquare_problem(counts: torch.Tensor, dist: torch.Tensor, alpha: float) -> str | None:
    """None when ``counts`` (V,) could be a multinomial sample of ``dist``, else why not.
    A token with probability 0 must never appear; cells expected fewer than
    MIN_EXPECTED times are merged into the largest one."""
    counts = counts.to(torch.float64)
    n = float(counts.sum())
    dist = dist.to(torch.float64).clamp(min=0)
    dist = dist / dist.sum()
    impossible = (dist <= 1e-12) & (counts > 0)
    if impossible.any():
        token = int(impossible.nonzero()[0])
        return (
            f"token {token} appeared {int(counts[token])} times but has probability {float(dist[token]):.3g}"
        )
    expected = n * dist
    big = expected >= MIN_EXPECTED
    if int(big.sum()) <= 1:
        return None
    obs, exp = counts[big].clone(), expected[big].clone()
    largest = int(exp.argmax())
    obs[largest] += counts[~big].sum()
    exp[largest] += expected[~big].sum()
    pvalue = pvalue_chisquare(obs, exp)
    if pvalue >= alpha:
        return None
    return f"chi-square p-value {pvalue:.2g} < {alpha:g}"


def _fmt(values) -> str:
    return "[" + ", ".join(f"{float(v):.3f}" for v in values) + "]"


def round_lengths(rounds: torch.Tensor) -> torch.Tensor:
    """How many tokens each padded row holds (its entries before the first -1)."""
    return (rounds >= 0).cumprod(dim=1).sum(dim=1)


def rounds_structure_problem(rounds, num_rounds: int, gamma: int, vocab: int) -> str | None:
    """What is wrong with the shape, dtype or padding of speculative_rounds' output, if anything."""
    if not isinstance(rounds, torch.Tensor):
        return f"expected a tensor, got {type(rounds).__name__}"
    if tuple(rounds.shape) != (num_rounds, gamma + 1):
        return f"expected shape ({num_rounds}, {gamma + 1}), got {tuple(rounds.shape)}"
    if rounds.dtype != torch.long:
        return f"expected dtype torch.int64, got {rounds.dtype}"
    lengths = round_lengths(rounds)
    padded = torch.arange(gamma + 1) >= lengths[:, None]
    if (rounds[padded] != -1).any() or (rounds[~padded] >= vocab).any():
        bad = int(((padded & (rounds != -1)) | (~padded & (rounds >= vocab))).any(1).nonzero()[0])
        return f"round {bad} is {rounds[bad].tolist()}: tokens in [0, {vocab}), then only -1"
    if (lengths == 0).any():
        bad = int((lengths == 0).nonzero()[0])
        return f"round {bad} emitted no token: every round emits at least one"
    return None


def rounds_problem(rounds: torch.Tensor, law: Profile, alpha: float = ALPHA) -> str | None:
    """None when well-formed ``rounds`` could have been drawn from ``law``, else the first
    position where they could not, with what was seen and what was expected."""
    lengths = round_lengths(rounds)
    vocab = law.tokens[0].shape[0]
    for j in range(rounds.shape[1]):
        reached = lengths > j
        m = int(reached.sum())
        if j > 0:
            trials = int((lengths > j - 1).sum())
            rate = law.goes_on[j - 1]
            if trials and pvalue_binomial(m, trials, rate) < alpha:
                return (
                    f"draft position {j - 1}: {m} of {trials} rounds kept it and went on "
                    f"({m / trials:.4f}); expected probability {rate:.4f}"
                )
        if m == 0:
            continue
        dist = law.tokens[j]
        if dist is None:
            return f"{m} rounds emitted a token at position {j}; none should"
        counts = torch.bincount(rounds[reached, j], minlength=vocab)[:vocab]
        problem = _chisquare_problem(counts, dist, alpha)
        if problem:
            return (
                f"token at position {j} (over the {m} rounds that emitted one): frequencies "
                f"{_fmt(counts / m)}, expected {_fmt(dist)}: {problem}"
            )
    return None


def check_rounds(rounds, p: torch.Tensor, q: torch.Tensor, num_rounds: int, *, name: str, hint=None) -> None:
    """``speculative_rounds(p, q, num_rounds)`` output against the target's law; on failure
    the first misconception whose law the rounds fit is named."""
    gamma, vocab = q.shape
    problem = rounds_structure_problem(rounds, num_rounds, gamma, vocab)
    if problem:
        raise CheckFailure(f"{name}: {problem}", hint=hint)
    problem = rounds_problem(rounds, target_profile(p, q))
    if problem is None:
        return
    diagnosis = MISCONCEPTIONS.on("speculative_rounds", p, q).first_match(
        lambda law: rounds_problem(rounds, law) is None
    )
    beta = _fmt(acceptance_rate(p[:-1].double(), q.double()))
    message = (
        f"{name}: {problem}\n(p rows {_fmt_rows(p)}, q rows {_fmt_rows(q)}; "
        f"each draft should survive with probability sum min(p_i, q_i) = {beta})"
    )
    raise CheckFailure(f"{diagnosis}\n{message}" if diagnosis else message, hint=hint)


def _fmt_rows(rows: torch.Tensor) -> str:
    return "[" + ", ".join(_fmt(r) for r in rows) + "]"


# --- generation on toy models ----------------------------------------------------------


def bigram_model(probs: torch.Tensor) -> nn.Module:
    """A model whose next-token distribution depends on the last token only: row t of
    ``probs`` (V, V) after token t. Called on (n,) tokens it returns (n, V)."""
    return nn.Sequential(nn.Embedding.from_pretrained(probs.log(), freeze=True), nn.Softmax(dim=-1))


def model_rows(model: nn.Module, vocab: int) -> torch.Tensor:
    """A bigram model's (V, V) rows exactly as it computes them."""
    with torch.no_grad():
        return model(torch.arange(vocab))


def chain_model(vocab: int, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A deterministic target: after token t always (t + 1) mod V (probability exactly 1)."""
    return bigram_model(torch.eye(vocab, dtype=dtype).roll(1, dims=1))


def random_bigram(vocab: int, seed: int, scale: float = 1.5, dtype=torch.float32) -> nn.Module:
    """A bigram model with random rows (softmax of normals times ``scale``)."""
    return bigram_model(
        torch.softmax(Draw(seed).tensor(vocab, vocab, dtype=torch.float64, scale=scale), -1).to(dtype)
    )


def check_generated_length(out, max_new_tokens: int, *, name: str) -> None:
    """A 1-D int64 tensor of exactly ``max_new_tokens`` tokens."""
    if not isinstance(out, torch.Tensor):
        raise CheckFailure(f"{name}: expected a tensor, got {type(out).__name__}")
    if out.dim() != 1 or out.dtype != torch.long:
        raise CheckFailure(f"{name}: expected a 1-D int64 tensor, got shape {tuple(out.shape)}, {out.dtype}")
    if out.shape[0] > max_new_tokens:
        raise MISCONCEPTIONS.failure(
            "overshoots_max_new_tokens",
            f"{name}: {out.shape[0]} tokens, expected exactly max_new_tokens = {max_new_tokens}",
        )
    if out.shape[0] != max_new_tokens:
        raise CheckFailure(
            f"{name}: {out.shape[0]} tokens, expected exactly max_new_tokens = {max_new_tokens}",
            hint="return the new tokens only (not the prompt), cut to max_new_tokens",
        )


def transition_counts(last_prompt_token: int, out: torch.Tensor, vocab: int) -> torch.Tensor:
    """(V, V) counts of (token, next token) pairs in the prompt's last token + ``out``."""
    seq = torch.cat([torch.tensor([last_prompt_token]), out.to(torch.long)])
    return torch.bincount(seq[:-1] * vocab + seq[1:], minlength=vocab * vocab).reshape(vocab, vocab)


def check_transitions(counts: torch.Tensor, rows: torch.Tensor, *, name: str, alpha: float = ALPHA) -> None:
    """Generated text from a bigram target: after each token t, the next token must follow
    the target's row t (a chi-square test per row, over the transitions seen)."""
    for t in range(rows.shape[0]):
        m = int(counts[t].sum())
        if m == 0:
            continue
        problem = _chisquare_problem(counts[t], rows[t], alpha)
        if problem:
            raise CheckFailure(
                f"{name}: after token {t} ({m} times) the next token had frequencies "
                f"{_fmt(counts[t] / m)}, the target's row is {_fmt(rows[t])}: {problem}",
                hint="the drafts must be drawn from the draft's rows (not its argmax), each judged by "
                "the target row of its own position: row start - 1 + i judges draft i",
            )


# --- misconceptions: what each known mistake produces ----------------------------------

MISCONCEPTIONS = Misconceptions(
    "exercises/section7/README.md",
    Misconception(
        "argmax_acceptance",
        "drafts accepted when they match the target's argmax",
        "greedy verification only suits greedy decoding: to sample from p, accept draft x with "
        "probability min(1, p(x)/q(x)), i.e. when u * q(x) <= p(x)",
        readme="7.4 — Accepting a draft token",
        variants={"speculative_rounds": _argmax_acceptance},
    ),
    Misconception(
        "ratio_inverted",
        "acceptance ratio q/p",
        "a draft the target likes MORE than the draft model (p(x) >= q(x)) is always kept: accept when "
        "u <= p(x)/q(x), not q(x)/p(x)",
        readme="7.4 — Accepting a draft token",
        variants={"speculative_rounds": _ratio_inverted},
    ),
    Misconception(
        "residual_from_target",
        "a rejected token resampled from p",
        "p's mass on the draft's likely tokens was already spent on accepting them: resample from "
        "norm(max(0, p - q)), not from p",
        readme="7.4 — The residual distribution",
        variants={
            "speculative_rounds": _residual_from_target,
            "residual_distribution": lambda p, q: p,
        },
    ),
    Misconception(
        "residual_not_normalised",
        "the residual not renormalised",
        "max(0, p - q) sums to 1 - sum min(p, q), not 1: divide by its sum",
        readme="7.4 — The residual distribution",
        variants={"residual_distribution": lambda p, q: (p - q).clamp(min=0)},
    ),
    Misconception(
        "no_bonus_token",
        "no bonus token after gamma accepted drafts",
        "when every draft is accepted the target's last row p[gamma] is already computed: draw one more "
        "token from it (a round emits 1 to gamma + 1 tokens)",
        readme="7.4 — The bonus token",
        variants={"speculative_rounds": _no_bonus},
    ),
    Misconception(
        "continues_after_rejection",
        "drafts after a rejection still judged",
        "draft i + 1 was drawn after draft i; once draft i is replaced, the later drafts continue a "
        "sequence that no longer exists: stop at the first rejection",
        readme="7.4 — Stopping at the first rejection",
        variants={"speculative_rounds": _continues_after_rejection},
    ),
    Misconception(
        "greedy_draft",
        "drafts taken as the draft model's argmax",
        "the rule min(1, p/q) corrects drafts that were SAMPLED from q: draw each draft with "
        "torch.multinomial from the draft's row",
        readme="7.4 — Drafting",
        variants={"speculative_rounds": _greedy_draft},
    ),
    Misconception(
        "overshoots_max_new_tokens",
        "more than max_new_tokens returned",
        "a round emits up to gamma + 1 tokens, so the last one can pass the budget: cut the result to "
        "exactly max_new_tokens",
        readme="7.4 — Generating",
    ),
)


# --- the figure ------------------------------------------------------------------------

FIGURE_P = torch.tensor([0.05, 0.40, 0.30, 0.15, 0.10], dtype=torch.float64)
FIGURE_Q = torch.tensor([0.35, 0.10, 0.30, 0.05, 0.20], dtype=torch.float64)
FIGURE_GAMMA = 3
FIGURE_ROUNDS = 2500


def figure(impl) -> Figure:
    """The learner's speculative sampling at work on a 5-token vocabulary: the first token
    of each round against the target p and the draft q, the acceptance rate measured for
    drafts of several qualities against sum_x min(p, q), and tokens per round against
    1 + beta + ... + beta^gamma."""
    gamma = FIGURE_GAMMA
    p_rows = FIGURE_P.expand(gamma + 1, -1).clone()
    mixes = [0.0, 0.25, 0.5, 0.75, 1.0]
    measured, predicted, per_round, per_round_predicted = [], [], [], []
    first_tokens = None
    for k, t in enumerate(mixes):
        q_row = (1 - t) * FIGURE_Q + t * FIGURE_P
        q_rows = q_row.expand(gamma, -1).clone()
        rounds = torch.as_tensor(
            impl.speculative_rounds(p_rows, q_rows, FIGURE_ROUNDS, torch.Generator().manual_seed(k))
        )
        lengths = round_lengths(rounds).double()
        beta = float(acceptance_rate(FIGURE_P, q_row))
        # drafts kept per draft judged: accepted = length - 1, judged = accepted + (1 if a rejection)
        accepted = (lengths - 1).sum()
        judged = accepted + (lengths <= gamma).double().sum()
        measured.append(float(accepted / judged))
        predicted.append(beta)
        per_round.append(float(lengths.mean()))
        per_round_predicted.append(expected_tokens_per_round(beta, gamma))
        if k == 0:
            first_tokens = torch.bincount(rounds[:, 0], minlength=5)[:5].double() / FIGURE_ROUNDS

    fig, axes = new_figure(13.0, 3.8, ncols=3)
    ax = axes[0]
    x = torch.arange(5).double()
    ax.bar(x - 0.27, FIGURE_Q.numpy(), width=0.27, label="draft q", color="#bbbbbb")
    ax.bar(x, FIGURE_P.numpy(), width=0.27, label="target p", color="#4477aa")
    ax.bar(x + 0.27, first_tokens.numpy(), width=0.27, label="your first tokens", color="#ee7733")
    ax.set_xticks(range(5))
    ax.set_xlabel("token")
    ax.set_ylabel("probability / frequency")
    ax.set_title(f"first token of {FIGURE_ROUNDS} rounds (gamma={gamma})", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[1]
    ax.plot(mixes, predicted, "-", color="#4477aa", label="sum_x min(p, q)")
    ax.plot(mixes, measured, "o", color="#ee7733", label="your acceptance rate")
    ax.set_xlabel("draft quality t  (q = (1 - t) q0 + t p)")
    ax.set_ylabel("drafts accepted / drafts judged")
    ax.set_ylim(0, 1.05)
    ax.set_title("acceptance rate", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[2]
    ax.plot(mixes, per_round_predicted, "-", color="#4477aa", label="1 + beta + ... + beta^gamma")
    ax.plot(mixes, per_round, "o", color="#ee7733", label="yours (mean round length)")
    ax.set_xlabel("draft quality t")
    ax.set_ylabel("tokens per target call")
    ax.set_ylim(0, gamma + 1.2)
    ax.set_title("tokens per round", fontsize=10)
    ax.legend(fontsize=8)
    return png(fig), (
        "Your speculative rounds: the first token follows the target p, not the draft q; the "
        "acceptance rate and the tokens per target call follow sum_x min(p, q) as the draft improves"
    )


STEP_HINT = (
    "accept draft i while p[i, x] > 0 and u_i * q[i, x] <= p[i, x]; at the first rejection draw ONE token "
    "with torch.multinomial(residual_distribution(p[i], q[i]), 1, generator=generator) and stop; after "
    "gamma acceptances draw the bonus from p[gamma] the same way"
)


def check_step(impl, p, q, drafts, uniforms, expected: list[int], seed: int, *, name: str) -> None:
    """``speculative_step`` on these inputs (generator seeded with ``seed``) must return the
    tokens ``expected`` and leave its inputs unchanged."""
    with unchanged(p, q, drafts, uniforms, names=["p", "q", "draft_tokens", "uniforms"]):
        out = impl.speculative_step(p, q, drafts, uniforms, torch.Generator().manual_seed(seed))
    if not isinstance(out, torch.Tensor) or out.dim() != 1 or out.dtype != torch.long:
        raise CheckFailure(f"{name}: expected a 1-D int64 tensor, got {out!r}")
    check_equal(
        out.tolist(),
        expected,
        name=f"{name}\n  p = {p.tolist()}\n  q = {q.tolist()}\n  draft_tokens = {drafts.tolist()}, "
        f"uniforms = {uniforms.tolist()}",
        hint=STEP_HINT,
    )
