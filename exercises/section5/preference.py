"""Exercise 5.2 — fine-tuning objectives: SFT loss masking and DPO.

A chat model is a pre-trained language model fine-tuned twice: first on demonstrations
(supervised fine-tuning, SFT: "here is a prompt and a good answer"), then on preferences
("for this prompt, answer A is better than answer B"), here with Direct Preference
Optimization (DPO, Rafailov et al., 2023). Both objectives are a few lines on top of the
model's logits, and each line has a convention that is easy to get wrong:

* ``sft_labels``: pack (prompt, response) pairs into a padded batch whose labels count
  the response only;
* ``sft_loss``: the next-token cross-entropy over those labels, with the one-token shift;
* ``sequence_logprob``: log p(response | prompt) of each sequence, a sum over its tokens;
* ``dpo_loss``: -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))), with the rewards.

Replace every ``raise NotImplementedError`` with your code, then run

    pytest exercises/section5/test_preference.py      (or: llmkit check 5.2)

Nothing is banned: use any of torch, including ``F.cross_entropy`` (with
``ignore_index``), ``F.log_softmax``, ``torch.gather`` and ``F.logsigmoid``. The
conventions below are Hugging Face's (``labels`` aligned with ``input_ids``, the model
shifts, -100 ignored) and TRL's for DPO (summed log-probabilities, detached reference,
rewards beta * (log pi - log ref)). Do not use the ``trl`` library (it is not installed,
and it is what you are building).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: F401  (F.cross_entropy, F.logsigmoid are allowed)


def sft_labels(
    prompt_ids: Sequence,
    response_ids: Sequence,
    ignore_index: int = -100,
    pad_id: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pack B (prompt, response) pairs into one right-padded batch for SFT.

    Arguments:
        prompt_ids, response_ids: B token sequences each (pair b is prompt_ids[b],
            response_ids[b]); each sequence a 1-D integer tensor or a list of ints. A prompt
            may be empty, and so may a response.
        ignore_index: the label of a position that is not trained on (-100, PyTorch's and
            Hugging Face's default).
        pad_id: the token id that fills the rows after their end.

    Returns ``(input_ids, labels)``, both int64 of shape (B, T), T the longest
    len(prompt) + len(response) of the batch (0 if every pair is empty):
        input_ids[b] = prompt_b, then response_b, then pad_id up to T;
        labels[b]    = ignore_index on prompt_b's positions, response_b's tokens on its
                       own positions, ignore_index on the padding.

    Conventions (the tests hold you to them):
    * labels are ALIGNED with input_ids, not shifted: labels[b, t] is the token at position
      t or ignore_index. The loss functions below do the shift (as Hugging Face models do).
    * Mask by POSITION, never by value. Many tokenizers use the end-of-sequence token as
      the pad token; a response's own EOS (or any token equal to pad_id) is a label.
    * ValueError if the two sequences hold different numbers of pairs.

    Examples, with ignore_index = -100:
        prompts [[5, 9, 3], [7]], responses [[1], [2]], pad_id = 0 ->
            input_ids [[5, 9, 3, 1], [7, 2, 0, 0]]
            labels    [[-100, -100, -100, 1], [-100, 2, -100, -100]]
        prompts [[5, 9], [7]], responses [[3, 1], [2, 1]], pad_id = 1 (pad = EOS = 1) ->
            input_ids [[5, 9, 3, 1], [7, 2, 1, 1]]
            labels    [[-100, -100, 3, 1], [-100, 2, 1, -100]]     (each response's EOS counts)
    """
    raise NotImplementedError


def sft_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """The SFT loss: mean next-token cross-entropy over the labels that count.

    Shapes and dtypes:
        logits: (B, T, V) float32 or float64, the model's output on input_ids.
        labels: (B, T) int64, aligned with input_ids (as ``sft_labels`` makes them).
        returns a 0-dim tensor of logits' dtype, differentiable with respect to logits.

    Conventions:
    * The shift: ``logits[b, t]`` predicts the NEXT token, so it is scored against
      ``labels[b, t + 1]``: pair logits[:, :-1] with labels[:, 1:]. labels[:, 0] is never
      predicted; the last position's logits predict nothing.
    * A label equal to ``ignore_index`` adds nothing to the sum and nothing to the count.
    * ONE mean over every counted label of the whole batch (sum of -log p / their number),
      not a mean of per-sequence means: a response of 3 tokens weighs 3, one of 30 weighs 30.
      That is ``F.cross_entropy(..., ignore_index=ignore_index)``'s mean.
    * NaN when no label counts (0 / 0, as F.cross_entropy gives).
    """
    raise NotImplementedError


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """log p(response | prompt) for each sequence: the SUM of its counted labels' log-probabilities.

    Shapes and dtypes:
        logits: (B, T, V) float32 or float64; labels: (B, T) int64, aligned with the inputs.
        returns (B,) of logits' dtype, differentiable with respect to logits.

    Conventions:
    * The same shift as ``sft_loss``: logits[b, t] scores labels[b, t + 1]; labels equal
      to ``ignore_index`` count for nothing.
    * A sum, not a mean: the probability of a response is the product of its tokens'
      probabilities, so its log is the sum (DPO as published and as TRL computes it;
      length-normalised variants such as SimPO average, but that is another objective).
    * A sequence with no counted label gets 0 (an empty sum).
    """
    raise NotImplementedError


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO loss of a batch of B preference pairs, and the implicit rewards.

    Arguments: four (B,) float32 or float64 tensors of sequence log-probabilities (from
    ``sequence_logprob``): the policy's (the model being trained) on the chosen and on the
    rejected responses, and the reference model's (the frozen starting point) on the
    same; ``beta`` > 0, how far the policy may move from the reference.

    Returns ``(loss, chosen_reward, rejected_reward)`` in the inputs' dtype:
        chosen_reward   = beta * (policy_chosen - ref_chosen)        (B,)
        rejected_reward = beta * (policy_rejected - ref_rejected)    (B,)
        loss = mean over the batch of -log sigmoid(chosen_reward - rejected_reward)   0-dim

    Conventions:
    * beta multiplies the whole difference of log-ratios:
      beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)).
    * The reference log-probabilities are constants: detach them, so that no gradient
      reaches them (or the reference model) even when the caller computed them with
      autograd on. The loss is differentiable with respect to the policy's log-probs.
    * The rewards are for logging: return them detached.
    * Numerically stable for any margin: -log sigmoid(z) = -F.logsigmoid(z), finite
      everywhere; torch.log(torch.sigmoid(z)) is -inf once sigmoid(z) underflows to 0
      (z below about -100 in float32), and so is the loss.
    """
    raise NotImplementedError
