"""Public tests for exercise 4.3 (distillation and pruning). Run: pytest exercises/section4

They draw logits (leading dims or none, several temperatures and alphas) and weights
(1 to 3 dims, half precision included, fractions and counts as amounts), and compare
with torch's own functions: F.kl_div and F.cross_entropy for the loss,
torch.nn.utils.prune for the masks. When a check fails it says which known mistake your
output looks like. The hidden graders draw more cases and edge cases.
"""

import pytest
import torch
from hypothesis import given, settings

from llmkit.testing import Draw, assert_close, assert_finite, load_support, value_and_grad

pytestmark = pytest.mark.exercise("4.3")
support = load_support("4.3")
mistakes = support.MISCONCEPTIONS

# --- distillation ---------------------------------------------------------------


@settings(max_examples=15)
@given(case=support.distill_case())
def test_distillation_matches_kl_div_and_cross_entropy(impl, case):
    student, teacher, labels = support.distill_inputs(case)
    T, alpha = case["T"], case["alpha"]
    assert_close(
        impl.distillation_loss(student, teacher, labels, T=T, alpha=alpha),
        support.distillation_oracle(student, teacher, labels, T, alpha),
        name=support.describe_distill(case),
        hint="alpha * T**2 * KL(p_teacher || p_student) (summed over V, mean over positions) "
        "+ (1 - alpha) * cross_entropy(student_logits, labels) at T = 1",
        suspects=mistakes.on("distillation_loss", student, teacher, labels, T=T, alpha=alpha),
    )


@settings(max_examples=4)
@given(case=support.distill_case())
def test_gradients_reach_the_student_and_not_the_teacher(impl, case):
    case = {**case, "dtype": torch.float64}
    student, teacher, labels = support.distill_inputs(case)
    T, alpha = case["T"], case["alpha"]
    one = torch.tensor(1.0, dtype=torch.float64)
    kwargs = {"T": T, "alpha": alpha}
    got = value_and_grad(impl.distillation_loss, [student, teacher, labels], one, kwargs=kwargs)
    want = value_and_grad(support.distillation_oracle, [student, teacher, labels], one, kwargs=kwargs)
    teacher_grad = got.inputs[1]
    if teacher_grad.abs().max() > 0:
        raise mistakes.failure(
            "teacher_not_detached",
            f"{support.describe_distill(case)}: backward() put a gradient of norm "
            f"{float(teacher_grad.norm()):.3g} into teacher_logits; it must stay zero",
        )
    assert_close(got.inputs[0], want.inputs[0], name="gradient w.r.t. student_logits")


def test_a_confident_teacher_gives_a_finite_loss(impl, draw):
    # Logits in the hundreds: in float32 most of softmax(teacher / T) rounds to exactly 0.
    student = draw.tensor(4, 6, scale=200.0)
    teacher = draw.tensor(4, 6, scale=200.0)
    labels = torch.tensor([0, 5, 2, 3])
    out = impl.distillation_loss(student, teacher, labels, T=1.5, alpha=0.7)
    assert_close(
        out,
        support.distillation_oracle(student, teacher, labels, 1.5, 0.7),
        name="distillation_loss with logits in the hundreds (float32)",
        suspects=mistakes.on("distillation_loss", student, teacher, labels, T=1.5, alpha=0.7),
    )
    assert_finite(out, name="distillation_loss with logits in the hundreds")


# --- pruning --------------------------------------------------------------------


@settings(max_examples=12)
@given(case=support.prune_case())
def test_magnitude_prune_matches_torch_prune(impl, case):
    shape, dtype, amount, seed = case
    W = Draw(seed).tensor(*shape, dtype=dtype)
    assert_close(
        impl.magnitude_prune(W, amount),
        support.magnitude_mask(W, amount),
        name=f"magnitude_prune(W {shape} {dtype}, amount={amount!r})",
        hint="False at the k = round(amount * W.numel()) smallest |w| (an int amount is k itself)",
        suspects=mistakes.on("magnitude_prune", W, amount),
    )


# (shape, amount) where round(amount * n) and int(amount * n) differ: 0.29 * 100 is
# 28.999999999999996 in floating point, 0.35 * 10 is 3.5, which rounds to the even 4.
COUNT_CASES = [((10, 10), 0.29), ((2, 5), 0.35), ((7,), 0.5)]


@pytest.mark.parametrize("shape, amount", COUNT_CASES)
def test_the_count_is_rounded(impl, draw, shape, amount):
    W = draw.tensor(*shape)
    n = W.numel()
    params = {"a": W.flatten()[: n // 2], "b": W.flatten()[n // 2 :].reshape(-1, 1) * 0.5}
    rows = draw.tensor(n, 2)  # n rows to prune from
    describe = f"amount={amount} of {n} weights"
    assert_close(
        impl.magnitude_prune(W, amount),
        support.magnitude_mask(W, amount),
        name=f"magnitude_prune, {describe}",
        suspects=mistakes.on("magnitude_prune", W, amount),
    )
    support.check_global_masks(
        impl.global_magnitude_prune(params, amount),
        params,
        amount,
        name=f"global_magnitude_prune, amount={amount} of {n} weights",
    )
    assert_close(
        impl.structured_prune(rows, amount, dim=0),
        support.structured_mask(rows, amount, 0),
        name=f"structured_prune, amount={amount} of {rows.shape[0]} rows",
        suspects=mistakes.on("structured_prune", rows, amount, dim=0),
    )


@settings(max_examples=6)
@given(case=support.prune_case(max_size=5))
def test_ties_are_pruned_lower_index_first(impl, case):
    shape, dtype, amount, seed = case
    W = support.grid_weights(shape, seed, dtype)  # entries in {-1.5, ..., 1.5}: many ties
    assert_close(
        impl.magnitude_prune(W, amount),
        support.magnitude_mask(W, amount),
        name=f"magnitude_prune(W {shape} with tied magnitudes, amount={amount!r})",
        hint="prune exactly k entries: among equal |w|, the lower flat index first (argsort(stable=True))",
        suspects=mistakes.on("magnitude_prune", W, amount),
    )


def test_ties_in_global_and_structured_pruning(impl):
    # Magnitudes 0.5 and 1.0 shared across tensors; rows 1 and 3 of R have equal norms.
    params = {"a": torch.tensor([[1.0, -0.5], [0.5, 2.0]]), "b": torch.tensor([0.5, -1.0, 1.0])}
    support.check_global_masks(
        impl.global_magnitude_prune(params, 2),
        params,
        2,
        name="global_magnitude_prune(..., amount=2), three weights tied at 0.5",
        hint="exactly 2 pruned: the first two 0.5s in the dict's order",
    )
    R = torch.tensor([[3.0, 4.0], [0.0, 1.0], [2.0, 2.0], [1.0, 0.0], [5.0, 0.0]])
    assert_close(
        impl.structured_prune(R, 0.2, dim=0),
        support.structured_mask(R, 0.2, 0),
        name="structured_prune(R (5, 2), 0.2, dim=0), rows 1 and 3 of norm 1",
        hint="exactly 1 row pruned: row 1, the lower index of the two tied rows",
        suspects=mistakes.on("structured_prune", R, 0.2, dim=0),
    )


@settings(max_examples=8)
@given(case=support.global_case())
def test_global_prune_matches_torch_prune(impl, case):
    shapes, scales, dtype, amount, seed = case
    params = support.global_inputs(shapes, scales, dtype, seed)
    support.check_global_masks(
        impl.global_magnitude_prune(params, amount),
        params,
        amount,
        name=f"global_magnitude_prune(shapes {shapes}, scales {scales}, {dtype}, amount={amount!r})",
        hint="rank every weight of every tensor together; prune round(amount * total)",
    )


def test_global_prune_ranks_all_tensors_together(impl, draw):
    params = {"small": draw.tensor(4, 4, scale=0.1), "large": draw.tensor(4, 4, scale=10.0)}
    support.check_global_masks(
        impl.global_magnitude_prune(params, 0.5),
        params,
        0.5,
        name="global_magnitude_prune({'small': 0.1 * randn(4, 4), 'large': 10 * randn(4, 4)}, 0.5)",
        hint="half of ALL weights go: here nearly every weight of the small tensor",
    )


@settings(max_examples=10)
@given(case=support.structured_case())
def test_structured_prune_matches_torch_prune(impl, case):
    shape, dim, dtype, amount, seed = case
    W = Draw(seed).tensor(*shape, dtype=dtype)
    assert_close(
        impl.structured_prune(W, amount, dim=dim),
        support.structured_mask(W, amount, dim),
        name=f"structured_prune(W {shape}, amount={amount!r}, dim={dim})",
        hint="one L2 norm per slice W.select(dim, i), over every other dim; prune whole slices",
        suspects=mistakes.on("structured_prune", W, amount, dim=dim),
    )


def test_structured_prune_ranks_rows_by_their_l2_norm(impl):
    # Row 0 has one large weight (L2 3, L1 3), row 1 many small ones (L2 2, L1 4).
    W = torch.tensor([[3.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [4.0, 4.0, 4.0, 4.0]])
    for dim, amount in [(0, 1), (1, 0.5)]:
        assert_close(
            impl.structured_prune(W, amount, dim=dim),
            support.structured_mask(W, amount, dim),
            name=f"structured_prune(W (3, 4), amount={amount}, dim={dim})",
            suspects=mistakes.on("structured_prune", W, amount, dim=dim),
        )
