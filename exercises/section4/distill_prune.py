"""Exercise 4.3 — knowledge distillation and magnitude pruning: two ways to make a small
model out of a large one.

Replace every ``raise NotImplementedError`` with your implementation, then run

    pytest exercises/section4/test_distill_prune.py      (or: llmkit check 4.3)

* ``distillation_loss`` trains a small *student* to match a large *teacher*'s softened
  output distribution as well as the labels (Hinton et al., 2015).
* ``magnitude_prune``, ``global_magnitude_prune`` and ``structured_prune`` choose
  which weights (or whole rows / columns) to zero: the ones with the smallest magnitude.
  They return bool masks, True = kept; applying one is ``W * mask``.

Banned here (a static scan and a runtime trap enforce it): the library versions of what
you are writing, ``F.kl_div`` / ``torch.kl_div`` / ``nn.KLDivLoss`` and
``torch.nn.utils.prune`` (``l1_unstructured``, ``L1Unstructured``, ``global_unstructured``,
``ln_structured``, ``LnStructured``). Everything else is fine: ``F.log_softmax``,
``F.cross_entropy``, ``torch.argsort``, ``torch.linalg.vector_norm``, ...
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F  # noqa: F401  (log_softmax and cross_entropy are allowed)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    T: float = 2.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    """The knowledge-distillation loss of a student against a teacher and the labels::

        loss = alpha * T**2 * KL(p_teacher || p_student) + (1 - alpha) * CE(student_logits, labels)

        p_teacher = softmax(teacher_logits / T),  p_student = softmax(student_logits / T)
        KL(p || q) = sum_v p_v * (log p_v - log q_v)

    Shapes and dtypes:
        student_logits: (..., V) float32 or float64: any number of leading dims (none
            too), one row of V logits per position. N = the number of positions
            (the product of the leading dims, 1 when there are none).
        teacher_logits: the same shape and dtype.
        labels: (...) int64 class indices in [0, V), one per position.
        T: the temperature, a float > 0. alpha: a float in [0, 1].
        returns a 0-dim tensor of the logits' dtype.

    Conventions (libraries differ on each one):
    * The KL runs from the teacher to the student: KL(p_teacher || p_student), summed
      over the V classes of a position, then averaged over the N positions. That is
      ``F.kl_div(log p_student, log p_teacher, log_target=True, reduction="batchmean")``
      on the (N, V) view; note that F.kl_div takes the *student* first, that its
      reduction="mean" divides by N * V, and that "batchmean" on a 3-D tensor divides
      by the first dim only. Here: the mean over all N positions.
    * The soft term is multiplied by T**2, so its gradients keep their size when T changes.
    * ``alpha`` weights the soft (KL) term, ``1 - alpha`` the hard one.
    * The hard term is the mean cross-entropy of the raw student logits (temperature 1)
      with the labels, over the N positions.
    * The teacher is a constant: no gradient may reach ``teacher_logits``, even when it
      requires grad. Gradients do flow to ``student_logits``.
    * Stable for confident teachers (logits in the hundreds): no NaN or inf.
    Inputs are left unchanged.
    """
    raise NotImplementedError


def magnitude_prune(W: torch.Tensor, amount: int | float) -> torch.Tensor:
    """The mask that prunes the ``amount`` smallest-magnitude entries of ``W``.

    W: a floating tensor of any shape (float16, bfloat16, float32, float64).
    amount: how many entries to prune, as ``torch.nn.utils.prune`` reads it:
        * a float in [0, 1] is a fraction: prune k = round(amount * W.numel()) entries,
          with Python's ``round`` (halves go to the even integer: round(2.5) == 2,
          round(3.5) == 4);
        * an int >= 0 is the count itself: amount=1 prunes one entry, amount=1.0 all.
        ValueError for a float outside [0, 1], a negative int, or an int > W.numel().
    returns: a bool tensor of W's shape, False at the k entries of smallest |w|, True
        elsewhere (torch.nn.utils.prune stores the same mask as 1.0 / 0.0 in W's dtype).

    Ties: among entries of equal |w|, the one with the lower flat (row-major) index is
    pruned first, so exactly k entries are pruned (a stable sort of |W| in ascending
    order, prune the first k). ``W`` is left unchanged.
    """
    raise NotImplementedError


def global_magnitude_prune(
    params: Mapping[str, torch.Tensor], amount: int | float
) -> dict[str, torch.Tensor]:
    """Magnitude pruning of several tensors at once, ranked together (one threshold for all).

    params: name -> floating tensor (any shapes), e.g. ``dict(model.named_parameters())``.
    amount: as in ``magnitude_prune``, of the total n = the sum of the tensors' numel():
        prune k = round(amount * n) entries, the k smallest |w| of ALL the tensors: a
        tensor of small weights may lose most of them, one of large weights none.
    returns: name -> bool mask of that tensor's shape (True = kept), in the same order.
        An empty dict gives an empty dict.

    Ties: as in ``magnitude_prune``, over the tensors flattened and concatenated in the
    dict's order (so among equal |w|, an entry of an earlier tensor is pruned first).
    The tensors are left unchanged.
    """
    raise NotImplementedError


def structured_prune(W: torch.Tensor, amount: int | float, dim: int = 0) -> torch.Tensor:
    """The mask that prunes whole slices of ``W`` along ``dim``: those of smallest L2 norm.

    W: a float32 or float64 tensor of 2 or more dims (ValueError for fewer).
    dim: the axis whose slices are pruned, as in ``torch.nn.utils.prune.ln_structured``:
        for a Linear weight (out, in), dim=0 prunes rows (output units), dim=1 columns
        (inputs). Negative dims count from the end; a dim out of range raises IndexError.
        Slice i is ``W.select(dim, i)``; its norm is sqrt(sum of w^2) over ALL its
        entries (every dim but ``dim``).
    amount: as in ``magnitude_prune``, counted in slices: k = round(amount * W.shape[dim])
        for a float, the int itself otherwise (ValueError above W.shape[dim]).
    returns: a bool tensor of W's shape: False on every entry of the k slices with the
        smallest norms, True elsewhere.

    Ties: among slices of equal norm, the lower index is pruned first. ``W`` is left unchanged.
    """
    raise NotImplementedError
