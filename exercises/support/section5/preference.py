"""Support for exercise 5.2 (fine-tuning objectives: SFT loss masking and DPO): what its
public tests, graders, notebook and `llmkit show` share. It ships to learners, so nothing
here solves the exercise: the oracles are library calls (``F.cross_entropy`` with
``ignore_index``, ``F.logsigmoid``) in float64 under the exercise's conventions, and the
misconceptions' variants are the same calls with the mistake's arguments.

* :func:`pack` — a batch of (prompt, response) pairs laid out as the exercise asks, row
  by row; its keyword arguments switch the masking rules (what the mistakes do).
* :func:`sft_loss_oracle`, :func:`sequence_logprob_oracle` — ``F.cross_entropy`` on
  float64 logits, with the one-token shift (or without it, for a mistake).
* :func:`dpo_oracle`, :func:`dpo_gradients` — the DPO loss, its rewards and its
  gradients in closed form, in float64.
* :func:`pairs_case`, :func:`logits_case`, :func:`dpo_case` — the hypothesis strategies
  both the public tests and the graders draw from, and their inputs.
* :func:`preference_task`, :func:`tiny_policy`, :func:`dpo_train` — kit-made preference
  pairs ("sort the prompt" is preferred to "copy the prompt"), a seeded
  :class:`~llmkit.toymodels.TinyTransformer` policy, and DPO training driven from here:
  the policy stays on this side; your ``sequence_logprob`` and ``dpo_loss`` are only
  called (values, and their gradients through :func:`value_and_grad`), so the same loop
  runs on your module in-process or in the grading sandbox.
* :data:`MISCONCEPTIONS` and :func:`figure`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    CheckFailure,
    Draw,
    Misconception,
    Misconceptions,
    as_plain_tensor,
    describe_case,
    value_and_grad,
)
from llmkit.toymodels import TinyTransformer

IGNORE_INDEX = -100

# --- packing (prompt, response) pairs ---------------------------------------------------


def as_ids(seq) -> list[int]:
    """A token sequence (1-D tensor or list of ints) as a list of ints."""
    return [int(t) for t in (seq.tolist() if isinstance(seq, torch.Tensor) else seq)]


def pack(
    prompts,
    responses,
    ignore_index: int = IGNORE_INDEX,
    pad_id: int = 0,
    *,
    mask_prompt: bool = True,
    mask_padding: bool = True,
    mask_pad_value: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, labels)`` for the pairs, built row by row from lists.

    Row b of input_ids is prompt_b + response_b, then pad_id up to the longest row;
    labels hold the response tokens where they stand, ignore_index elsewhere. The
    keyword arguments switch the rules: ``mask_prompt=False`` keeps the prompt's tokens
    as labels, ``mask_padding=False`` leaves pad_id on the padding, ``mask_pad_value=True``
    also masks every position whose token equals pad_id."""
    rows_ids, rows_labels = [], []
    for p, r in zip(prompts, responses):
        p, r = as_ids(p), as_ids(r)
        rows_ids.append(p + r)
        rows_labels.append((p if not mask_prompt else [ignore_index] * len(p)) + r)
    length = max((len(row) for row in rows_ids), default=0)
    pad_label = ignore_index if mask_padding else pad_id
    ids = [row + [pad_id] * (length - len(row)) for row in rows_ids]
    labels = [row + [pad_label] * (length - len(row)) for row in rows_labels]
    if mask_pad_value:
        labels = [[ignore_index if t == pad_id else y for t, y in zip(ri, rl)] for ri, rl in zip(ids, labels)]
    shape = (len(ids), length)
    return (
        torch.tensor(ids, dtype=torch.long).reshape(shape),
        torch.tensor(labels, dtype=torch.long).reshape(shape),
    )


# --- the losses, from F.cross_entropy in float64 ----------------------------------------


def token_nll(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX, shift: int = 1):
    """``-log p(label)`` per (row, position) in float64, 0 where the label is ignored:
    logits[:, t] scored against labels[:, t + shift]. Returns (nll, counted), both (B, T - shift)."""
    vocab = logits.shape[-1]
    scored = logits[:, : logits.shape[1] - shift].to(torch.float64)
    targets = labels[:, shift:]
    nll = F.cross_entropy(
        scored.reshape(-1, vocab), targets.reshape(-1), ignore_index=ignore_index, reduction="none"
    ).reshape(targets.shape)
    return nll, targets != ignore_index


def sft_loss_oracle(
    logits: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
    *,
    shift: int = 1,
    per_sequence: bool = False,
) -> torch.Tensor:
    """The mean ``-log p`` over every counted label of the batch (NaN if none), logits at t
    against labels at t + ``shift``, in logits' dtype. ``per_sequence=True``: the mean of
    the per-sequence means instead."""
    nll, counted = token_nll(logits, labels, ignore_index, shift)
    if per_sequence:
        value = (nll.sum(dim=1) / counted.sum(dim=1)).mean()
    else:
        value = nll.sum() / counted.sum()
    return value.to(logits.dtype)


def sequence_logprob_oracle(
    logits: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
    *,
    shift: int = 1,
    average: bool = False,
) -> torch.Tensor:
    """(B,) the summed ``log p`` of each row's counted labels (0 for none), in logits' dtype;
    ``average=True``: their mean instead (NaN for none)."""
    nll, counted = token_nll(logits, labels, ignore_index, shift)
    total = -nll.sum(dim=1)
    if average:
        total = total / counted.sum(dim=1)
    return total.to(logits.dtype)


def dpo_oracle(
    policy_chosen,
    policy_rejected,
    ref_chosen,
    ref_rejected,
    beta: float = 0.1,
    *,
    beta_on_chosen_only: bool = False,
    swapped: bool = False,
    reward_beta: bool = True,
    log_of_sigmoid: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, chosen reward, rejected reward) in the inputs' dtype, computed in float64:
    rewards beta * (policy - reference), loss mean(-logsigmoid(chosen - rejected)).

    The keyword arguments switch the rules: ``beta_on_chosen_only`` computes the margin as
    beta * (pc - rc) - (pr - rr); ``swapped`` exchanges chosen and rejected; with
    ``reward_beta=False`` the rewards returned lack beta; ``log_of_sigmoid`` computes
    log(sigmoid(z)) in the inputs' dtype (which underflows to log 0 = -inf)."""
    dtype = policy_chosen.dtype
    pc, pr, rc, rr = (
        t.detach().to(torch.float64) for t in (policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    )
    if swapped:
        pc, pr, rc, rr = pr, pc, rr, rc
    chosen, rejected = beta * (pc - rc), beta * (pr - rr)
    margin = beta * (pc - rc) - (pr - rr) if beta_on_chosen_only else chosen - rejected
    if log_of_sigmoid:
        loss = -torch.log(torch.sigmoid(margin.to(dtype))).to(torch.float64).mean()
    else:
        loss = -F.logsigmoid(margin).mean()
    if not reward_beta:
        chosen, rejected = pc - rc, pr - rr
    return loss.to(dtype), chosen.to(dtype), rejected.to(dtype)


def dpo_tolerance(dtype: torch.dtype) -> dict:
    """``rtol`` and ``atol`` for the DPO checks: 1e-8 in float64, the defaults otherwise.
    ``-F.softplus(-z)`` is a stable way to write logsigmoid too, but above its threshold
    (20) softplus returns its input, off by up to e^-20 = 2e-9: more than float64's 1e-10."""
    return {"rtol": 1e-8, "atol": 1e-8} if dtype == torch.float64 else {}


def dpo_gradients(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float = 0.1):
    """d loss / d (policy_chosen, policy_rejected, ref_chosen, ref_rejected) in closed form:
    with z = beta * ((pc - rc) - (pr - rr)) and B pairs, d loss / d pc = -beta sigmoid(-z) / B,
    d loss / d pr = +beta sigmoid(-z) / B, and zero for the reference (a constant)."""
    dtype = policy_chosen.dtype
    pc, pr, rc, rr = (
        t.detach().to(torch.float64) for t in (policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    )
    z = beta * ((pc - rc) - (pr - rr))
    g = beta * torch.sigmoid(-z) / len(z)
    zero = torch.zeros_like(g)
    return tuple(t.to(dtype) for t in (-g, g, zero, zero))


# --- the inputs the public tests and graders draw ---------------------------------------

EOS = 1  # every non-empty response ends with it


@st.composite
def pairs_case(draw_st, min_batch: int = 1, max_batch: int = 4, max_len: int = 5):
    """B (prompt, response) pairs: (lengths, vocab, pad_id, ignore_index, as_lists, seed).

    ``lengths`` is a tuple of (prompt length, response length), each 0..``max_len``; a
    non-empty response ends with EOS (id 1). ``pad_id`` is EOS itself half the time (pad =
    eos, as in many tokenizers), else 0; ``as_lists``: the sequences come as lists of ints
    rather than 1-D tensors."""
    b = draw_st(st.integers(min_batch, max_batch), label="B")
    lengths = tuple(
        (
            draw_st(st.integers(0, max_len), label=f"prompt {i}"),
            draw_st(st.integers(0, max_len), label=f"response {i}"),
        )
        for i in range(b)
    )
    vocab = draw_st(st.integers(3, 12), label="V")
    pad_id = draw_st(st.sampled_from([EOS, 0]), label="pad_id")
    ignore_index = draw_st(st.sampled_from([IGNORE_INDEX, -1]), label="ignore_index")
    return lengths, vocab, pad_id, ignore_index, draw_st(st.booleans(), label="as lists"), draw_st(SEEDS)


def pairs_inputs(case):
    """``(prompts, responses, ignore_index, pad_id)`` for a :func:`pairs_case`."""
    lengths, vocab, pad_id, ignore_index, as_lists, seed = case
    rng = Draw(seed)
    prompts, responses = [], []
    for p_len, r_len in lengths:
        prompt = [int(t) for t in rng.integers(0, vocab, size=p_len)]
        response = [int(t) for t in rng.integers(0, vocab, size=max(r_len - 1, 0))] + [EOS] * min(r_len, 1)
        prompts.append(prompt if as_lists else torch.tensor(prompt, dtype=torch.long))
        responses.append(response if as_lists else torch.tensor(response, dtype=torch.long))
    return prompts, responses, ignore_index, pad_id


def describe_pairs(prompts, responses, ignore_index, pad_id) -> str:
    shown = [(as_ids(p), as_ids(r)) for p, r in zip(prompts, responses)]
    kind = "lists" if prompts and isinstance(prompts[0], list) else "tensors"
    return (
        f"sft_labels(pairs (prompt, response) {shown} as {kind}, "
        f"ignore_index={ignore_index}, pad_id={pad_id})"
    )


@st.composite
def logits_case(draw_st, min_batch: int = 1, max_batch: int = 4, max_len: int = 5):
    """A packed batch and random logits over it: (pairs case, dtype, logit scale, seed)."""
    pairs = draw_st(pairs_case(min_batch, max_batch, max_len))
    dtype = draw_st(FLOAT_DTYPES, label="dtype")
    scale = draw_st(st.sampled_from([1.0, 3.0]), label="logit scale")
    return pairs, dtype, scale, draw_st(SEEDS)


def logits_inputs(case) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(logits (B, T, V), labels (B, T), ignore_index)`` for a :func:`logits_case`: the
    pairs packed as the exercise asks (:func:`pack`), random logits of that shape."""
    pairs, dtype, scale, seed = case
    prompts, responses, ignore_index, pad_id = pairs_inputs(pairs)
    _, labels = pack(prompts, responses, ignore_index, pad_id)
    vocab = pairs[1]
    logits = Draw(seed).tensor(*labels.shape, vocab, dtype=dtype, scale=scale)
    return logits, labels, ignore_index


def describe_logits(fn: str, logits, labels, ignore_index) -> str:
    counted = (labels[:, 1:] != ignore_index).sum(dim=1).tolist()
    return (
        describe_case(
            fn,
            f"logits {tuple(logits.shape)} {str(logits.dtype).removeprefix('torch.')}",
            f"labels {labels.tolist()}",
            ignore_index=ignore_index,
        )
        + f" (labels 1..T-1 counted per row: {counted})"
    )


BETAS = st.sampled_from([0.1, 0.5, 2.0])  # not 1: there two of the mistakes give the right numbers


@st.composite
def dpo_case(draw_st, max_batch: int = 6):
    """(B, beta, dtype, seed) for a batch of sequence log-probabilities."""
    b = draw_st(st.integers(1, max_batch), label="B")
    return b, draw_st(BETAS, label="beta"), draw_st(FLOAT_DTYPES, label="dtype"), draw_st(SEEDS)


def dpo_inputs(case) -> tuple[list[torch.Tensor], float]:
    """``([policy_chosen, policy_rejected, ref_chosen, ref_rejected], beta)``: sequence
    log-probabilities around -20 (sums over a few tokens), the policy a few nats away
    from the reference."""
    b, beta, dtype, seed = case
    rng = Draw(seed)
    ref = [-20.0 + 6.0 * rng.tensor(b, dtype=torch.float64).abs() for _ in range(2)]
    policy = [r + 3.0 * rng.tensor(b, dtype=torch.float64) for r in ref]
    return [t.to(dtype) for t in (policy[0], policy[1], ref[0], ref[1])], beta


def describe_dpo(values, beta) -> str:
    names = ("policy_chosen", "policy_rejected", "ref_chosen", "ref_rejected")
    shown = ", ".join(f"{n}={[round(v, 3) for v in t.tolist()]}" for n, t in zip(names, values))
    return f"dpo_loss({shown}, beta={beta}) [{str(values[0].dtype).removeprefix('torch.')}]"


def as_triple(out, name: str) -> tuple:
    """The learner's ``dpo_loss`` output as (loss, chosen reward, rejected reward)."""
    if not (isinstance(out, (tuple, list)) and len(out) == 3):
        raise CheckFailure(
            f"{name}: expected a tuple (loss, chosen_reward, rejected_reward), got {type(out).__name__}",
            hint="return loss, chosen_reward, rejected_reward",
        )
    return tuple(out)


# --- DPO training on kit-made preference pairs ------------------------------------------

TASK_VOCAB, TASK_PAD = 16, 0  # ids: 0 pad, 1 EOS, 2..15 content


@dataclass
class PreferenceTask:
    prompts: list[list[int]]
    chosen: list[list[int]]  # the prompt's tokens sorted, then EOS
    rejected: list[list[int]]  # the prompt copied as it is, then EOS
    chosen_ids: torch.Tensor  # (n, T) prompt + chosen, padded
    chosen_labels: torch.Tensor  # (n, T) the chosen response's tokens, ignore_index elsewhere
    rejected_ids: torch.Tensor
    rejected_labels: torch.Tensor


def preference_task(seed: int, n: int = 32, vocab: int = TASK_VOCAB) -> PreferenceTask:
    """``n`` preference pairs: a prompt of 3 to 5 distinct content tokens (never already
    sorted); the chosen response is the prompt sorted, the rejected one the prompt copied,
    both ending with EOS. Packed with :func:`pack` (pad 0, ignore_index -100)."""
    gen = torch.Generator().manual_seed(seed)
    prompts, chosen, rejected = [], [], []
    while len(prompts) < n:
        length = int(torch.randint(3, 6, (1,), generator=gen))
        prompt = (torch.randperm(vocab - 2, generator=gen)[:length] + 2).tolist()
        if prompt == sorted(prompt):
            continue
        prompts.append(prompt)
        chosen.append(sorted(prompt) + [EOS])
        rejected.append(list(prompt) + [EOS])
    chosen_ids, chosen_labels = pack(prompts, chosen, IGNORE_INDEX, TASK_PAD)
    rejected_ids, rejected_labels = pack(prompts, rejected, IGNORE_INDEX, TASK_PAD)
    return PreferenceTask(prompts, chosen, rejected, chosen_ids, chosen_labels, rejected_ids, rejected_labels)


def tiny_policy(seed: int, vocab: int = TASK_VOCAB) -> TinyTransformer:
    """A seeded one-layer TinyTransformer over the task's vocabulary (context 16)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyTransformer(vocab=vocab, d_model=32, n_heads=4, n_layers=1, d_ff=64, context=16)
    return model


def model_logprobs(model, task: PreferenceTask) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) summed response log-probabilities under ``model``, by the oracle."""
    with torch.no_grad():
        chosen = sequence_logprob_oracle(model(task.chosen_ids).double(), task.chosen_labels)
        rejected = sequence_logprob_oracle(model(task.rejected_ids).double(), task.rejected_labels)
    return chosen, rejected


def reward_margins(policy, reference, task: PreferenceTask, beta: float) -> torch.Tensor:
    """(n,) beta * ((log pi(chosen) - log ref(chosen)) - (log pi(rejected) - log ref(rejected)))
    per pair, float64, by the oracle: DPO's implicit reward margin, 0 before training."""
    pc, pr = model_logprobs(policy, task)
    rc, rr = model_logprobs(reference, task)
    return beta * ((pc - rc) - (pr - rr))


@dataclass
class Training:
    policy: TinyTransformer  # the trained policy (on this side)
    reference: TinyTransformer  # its frozen starting point
    losses: list[float]  # dpo_loss's loss before each step
    chosen_rewards: list[float]  # dpo_loss's mean chosen reward before each step
    rejected_rewards: list[float]
    watched: list[float]  # the mean reward margin on the watched pairs after each step (oracle)


class Adam:
    """Plain Adam (betas 0.9 / 0.999, eps 1e-8) on a list of parameters, written out:
    constructing ``torch.optim.Adam`` imports torch's compiler stack, seconds of start-up."""

    def __init__(self, params: list[torch.Tensor], lr: float):
        self.params, self.lr, self.t = params, lr, 0
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]

    @torch.no_grad()
    def step(self, grads) -> None:
        self.t += 1
        for p, g, (m, v) in zip(self.params, grads, self.moments):
            m.mul_(0.9).add_(g, alpha=0.1)
            v.mul_(0.999).addcmul_(g, g, value=0.001)
            m_hat, v_hat = m / (1 - 0.9**self.t), v / (1 - 0.999**self.t)
            p.sub_(self.lr * m_hat / (v_hat.sqrt() + 1e-8))


def dpo_train(
    impl,
    task: PreferenceTask,
    *,
    steps: int,
    lr: float,
    beta: float,
    seed: int = 0,
    watch: PreferenceTask | None = None,
) -> Training:
    """DPO on ``task`` with ``impl``'s ``sequence_logprob`` and ``dpo_loss``: :class:`Adam`
    on a fresh :func:`tiny_policy` whose reference is a frozen copy of itself.

    The policy stays on this side. Each step calls ``impl.sequence_logprob`` on the
    policy's logits (detached) for the log-probabilities, gets d loss / d log-probs from
    ``value_and_grad(impl.dpo_loss, ...)``, then d loss / d logits from
    ``value_and_grad(impl.sequence_logprob, ...)`` weighted by those, and backpropagates
    that through the policy: the chain rule, one link per call, so only tensors cross.
    The reference log-probabilities are computed once, by ``impl.sequence_logprob`` too.
    With ``watch`` (other pairs), the mean reward margin on them is recorded after each
    step, by the oracle (:func:`reward_margins`)."""
    policy = tiny_policy(seed)
    reference = copy.deepcopy(policy).requires_grad_(False)
    ids = torch.cat([task.chosen_ids, task.rejected_ids])
    labels = torch.cat([task.chosen_labels, task.rejected_labels])
    n = len(task.chosen_ids)
    with torch.no_grad():
        ref = as_plain_tensor(impl.sequence_logprob(reference(ids), labels, IGNORE_INDEX), "sequence_logprob")
    adam = Adam(list(policy.parameters()), lr)
    losses, chosen_rewards, rejected_rewards, watched = [], [], [], []
    for _ in range(steps):
        logits = policy(ids)
        plain = logits.detach()
        logp = as_plain_tensor(impl.sequence_logprob(plain, labels, IGNORE_INDEX), "sequence_logprob")
        inputs = [logp[:n], logp[n:], ref[:n], ref[n:], beta]
        weights = (torch.tensor(1.0), torch.zeros(n), torch.zeros(n))
        step = value_and_grad(
            impl.dpo_loss, inputs, weights, hint="dpo_loss returns (loss, chosen, rejected)"
        )
        loss, chosen, rejected = step.output
        losses.append(float(loss))
        chosen_rewards.append(float(chosen.mean()))
        rejected_rewards.append(float(rejected.mean()))
        d_logp = torch.cat([step.inputs[0], step.inputs[1]])
        d_logits = value_and_grad(impl.sequence_logprob, [plain, labels, IGNORE_INDEX], d_logp).inputs[0]
        adam.step(torch.autograd.grad(logits, adam.params, d_logits.to(logits.dtype)))
        if watch is not None:
            watched.append(float(reward_margins(policy, reference, watch, beta).mean()))
    return Training(policy.eval(), reference.eval(), losses, chosen_rewards, rejected_rewards, watched)


# --- misconceptions: what each known mistake returns, from the oracles above -----------

LABELS = "labels of sft_labels"
INPUT_IDS = "input_ids of sft_labels"


def _labels(**rules):
    def variant(prompts, responses, ignore_index=IGNORE_INDEX, pad_id=0):
        return pack(prompts, responses, ignore_index, pad_id, **rules)[1]

    return variant


def _dpo(part: int, **rules):
    def variant(pc, pr, rc, rr, beta=0.1):
        return dpo_oracle(pc, pr, rc, rr, beta, **rules)[part]

    return variant


def _dpo_all(**rules):
    return {
        "dpo loss": _dpo(0, **rules),
        "chosen reward": _dpo(1, **rules),
        "rejected reward": _dpo(2, **rules),
    }


def _sft(**rules):
    def variant(logits, labels, ignore_index=IGNORE_INDEX):
        return sft_loss_oracle(logits, labels, ignore_index, **rules)

    return variant


def _logprob(**rules):
    def variant(logits, labels, ignore_index=IGNORE_INDEX):
        return sequence_logprob_oracle(logits, labels, ignore_index, **rules)

    return variant


MISCONCEPTIONS = Misconceptions(
    "exercises/section5/README.md",
    Misconception(
        "prompt_not_masked",
        "the prompt's tokens kept as labels",
        "SFT trains on the response only: every prompt position gets ignore_index, so the model is "
        "not taught to write prompts",
        readme="5.2 — Masking the prompt and the padding",
        variants={LABELS: _labels(mask_prompt=False)},
    ),
    Misconception(
        "padding_not_masked",
        "padding left as pad_id in the labels",
        "the padding positions get ignore_index: labels = pad_id there teaches the model to emit padding",
        readme="5.2 — Masking the prompt and the padding",
        variants={LABELS: _labels(mask_padding=False)},
    ),
    Misconception(
        "pad_id_masks_real_tokens",
        "labels masked by value (token == pad_id) instead of by position",
        "mask the positions after each row's end, never the tokens equal to pad_id: with pad = eos "
        "that drops every response's EOS, and the model never learns to stop",
        readme="5.2 — Masking the prompt and the padding",
        variants={LABELS: _labels(mask_pad_value=True)},
    ),
    Misconception(
        "labels_not_shifted",
        "logits compared with the label at the same position",
        "the logits at position t predict the NEXT token: pair logits[:, :-1] with labels[:, 1:] "
        "(labels stay aligned with input_ids; the loss shifts)",
        readme="5.2 — The one-token shift",
        variants={"sft_loss": _sft(shift=0), "sequence_logprob": _logprob(shift=0)},
    ),
    Misconception(
        "mean_of_sequence_means",
        "the mean of per-sequence mean losses",
        "sft_loss is ONE mean over every counted token of the batch (F.cross_entropy with ignore_index): "
        "a sequence weighs as much as its response tokens",
        readme="5.2 — One mean over the batch's tokens",
        variants={"sft_loss": _sft(per_sequence=True)},
    ),
    Misconception(
        "logprob_averaged",
        "the response's log-probability averaged over its tokens",
        "log p(response | prompt) is the SUM of its tokens' log-probabilities (a product of "
        "probabilities); the mean is another objective (length-normalised, as in SimPO)",
        readme="5.2 — A sequence's log-probability is a sum",
        variants={"sequence_logprob": _logprob(average=True)},
    ),
    Misconception(
        "chosen_rejected_swapped",
        "chosen and rejected exchanged",
        "the loss is -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))): it falls as the CHOSEN "
        "response gains on the rejected one",
        readme="5.2 — The DPO loss",
        variants=_dpo_all(swapped=True),
    ),
    Misconception(
        "beta_outside_difference",
        "beta multiplies only the chosen term",
        "beta scales the whole margin: beta * ((pi_c - ref_c) - (pi_r - ref_r)); "
        "beta * (pi_c - ref_c) - (pi_r - ref_r) is a precedence slip",
        readme="5.2 — The DPO loss",
        variants={"dpo loss": _dpo(0, beta_on_chosen_only=True)},
    ),
    Misconception(
        "reward_without_beta",
        "rewards returned without beta",
        "DPO's implicit reward is beta * (log pi - log ref): chosen_reward = beta * (pi_c - ref_c), "
        "the numbers trainers log",
        readme="5.2 — The DPO loss",
        variants={"chosen reward": _dpo(1, reward_beta=False), "rejected reward": _dpo(2, reward_beta=False)},
    ),
    Misconception(
        "log_of_sigmoid",
        "log(sigmoid(z)) instead of logsigmoid(z)",
        "sigmoid(z) underflows to 0 for z below about -100 (float32), and log(0) = -inf: use "
        "F.logsigmoid(z), which is finite everywhere",
        readme="5.2 — The DPO loss",
        variants={"dpo loss": _dpo(0, log_of_sigmoid=True)},
    ),
    Misconception(
        "reference_not_detached",
        "gradients flow into the reference log-probabilities",
        "the reference model is a constant: detach ref_chosen and ref_rejected (no gradient may reach "
        "it, even when the caller computed them with autograd on)",
        readme="5.2 — The reference model is a constant",
    ),
)


# --- the figure -------------------------------------------------------------------------

FIGURE_STEPS, FIGURE_LR, FIGURE_BETA = 60, 1e-2, 0.1


def figure(impl) -> Figure:
    """Three panels, each drawn with ``impl``'s functions: the labels ``impl.sft_labels``
    gives a small batch (prompt, response, padding); DPO training curves on the kit's
    preference task (rewards from ``impl.dpo_loss``, the held-out margin by the oracle);
    and ``impl.dpo_loss`` against the reward margin for three betas."""
    import numpy as np
    from matplotlib.colors import ListedColormap

    prompts = [[5, 9, 3], [7, 2, 8, 6, 4], [11]]
    responses = [[3, 5, 9, EOS], [2, 4, 6, 7, 8, EOS], [EOS]]
    ids, labels = (as_plain_tensor(t) for t in impl.sft_labels(prompts, responses, IGNORE_INDEX, EOS))
    lengths = [len(p) + len(r) for p, r in zip(prompts, responses)]
    # 0 prompt, 1 response, 2 padding: where each token is; hatched: what counts as a label.
    role = np.full(ids.shape, 2)
    for b, p in enumerate(prompts):
        role[b, : len(p)] = 0
        role[b, len(p) : lengths[b]] = 1

    task = preference_task(seed=3, n=32)
    held_out = preference_task(seed=4, n=32)
    run = dpo_train(impl, task, steps=FIGURE_STEPS, lr=FIGURE_LR, beta=FIGURE_BETA, watch=held_out)
    share = float((reward_margins(run.policy, run.reference, held_out, FIGURE_BETA) > 0).double().mean())

    fig, (left, middle, right) = new_figure(14.0, 3.9, ncols=3)
    left.imshow(role, cmap=ListedColormap(["#c6dafc", "#fbbc04", "#e8eaed"]), aspect="auto")
    for (b, t), token in np.ndenumerate(ids.numpy()):
        label = int(labels[b, t])
        counted = label != IGNORE_INDEX
        text = f"{token}\n→{label}" if counted else f"{token}\n·"
        left.text(
            t, b, text, ha="center", va="center", fontsize=7, fontweight="bold" if counted else "normal"
        )
    left.set_xticks(range(ids.shape[1]))
    left.set_yticks(range(ids.shape[0]), [f"pair {b}" for b in range(ids.shape[0])])
    left.set_xlabel("position (blue: prompt, yellow: response, grey: padding; pad = eos = 1)", fontsize=8)
    left.set_title("Your sft_labels: token → label (· = ignored)", fontsize=10)

    steps = range(1, FIGURE_STEPS + 1)
    middle.plot(steps, run.chosen_rewards, color="#188038", lw=1.8, label="chosen reward (your dpo_loss)")
    middle.plot(steps, run.rejected_rewards, color="#b3261e", lw=1.8, label="rejected reward (your dpo_loss)")
    middle.plot(steps, run.losses, color="#5f6368", lw=1.2, ls="--", label="DPO loss")
    middle.plot(
        steps,
        [c - r for c, r in zip(run.chosen_rewards, run.rejected_rewards)],
        color="#1a73e8",
        lw=1.8,
        label="reward margin, training pairs (your rewards)",
    )
    middle.plot(
        steps,
        [0.0, *run.watched[:-1]],
        color="#1a73e8",
        lw=1.4,
        ls=":",
        label=f"reward margin, 32 held-out pairs (> 0 for {share:.0%} at the end)",
    )
    middle.set_xlabel("Adam step")
    middle.set_title("DPO on 'sort the prompt' over 'copy it' (β = 0.1)", fontsize=10)
    middle.legend(fontsize=7)

    margins = torch.linspace(-40.0, 40.0, 81, dtype=torch.float64)
    zero = torch.zeros(1, dtype=torch.float64)
    for beta, colour in ((0.1, "#9cc3f5"), (0.3, "#4a90e2"), (1.0, "#1a4fa0")):
        values = [
            float(as_plain_tensor(as_triple(impl.dpo_loss(m[None], zero, zero, zero, beta), "dpo_loss")[0]))
            for m in margins
        ]
        right.plot(margins.numpy(), values, color=colour, lw=1.8, label=f"β = {beta:g}")
    right.set_xlabel("log-ratio margin (π_c − ref_c) − (π_r − ref_r)")
    right.set_ylabel("your dpo_loss")
    right.set_title("The DPO loss: −log σ(β · margin)", fontsize=10)
    right.legend(fontsize=8)
    caption = (
        "Your sft_labels on a small batch, DPO training of a tiny transformer with your sequence_logprob "
        "and dpo_loss (rewards, loss and the held-out reward margin), and your dpo_loss against the margin"
    )
    return png(fig), caption
