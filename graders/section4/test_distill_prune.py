"""Hidden graders for exercise 4.3 (distillation and pruning): 15 points, 14 here and the
generated ban test's 1 (F.kl_div and torch.nn.utils.prune).

Oracles are torch's own functions (exercises/support/section4/distill_prune.py):
F.kl_div(log_target=True, reduction="batchmean") and F.cross_entropy for the loss,
torch.nn.utils.prune's l1_unstructured, global_unstructured and ln_structured for the
masks (with importance scores that break ties by index, the stub's rule), float64
central differences for the gradient. Inputs come from hypothesis (shapes, amounts,
temperatures) and seeded generators (values); cheap checks come first.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    SEEDS,
    CheckFailure,
    Draw,
    assert_close,
    assert_finite,
    check_equal,
    check_gradients,
    load_support,
    unchanged,
    value_and_grad,
)

pytestmark = pytest.mark.exercise("4.3")
support = load_support("4.3")
mistakes = support.MISCONCEPTIONS

# --- pruning: the rules of `amount` (3 points) ---------------------------------------


@pytest.mark.points(1)
def test_amounts_out_of_range_raise_value_error(impl, draw):
    W, rows = draw.tensor(3, 4), draw.tensor(5, 2)
    calls = [
        ("magnitude_prune(W (3, 4), 1.5)", lambda: impl.magnitude_prune(W, 1.5)),
        ("magnitude_prune(W (3, 4), -0.1)", lambda: impl.magnitude_prune(W, -0.1)),
        ("magnitude_prune(W (3, 4), -1)", lambda: impl.magnitude_prune(W, -1)),
        ("magnitude_prune(W (3, 4), 13)", lambda: impl.magnitude_prune(W, 13)),
        ("global_magnitude_prune({'a': W (3, 4)}, 1.2)", lambda: impl.global_magnitude_prune({"a": W}, 1.2)),
        ("global_magnitude_prune({'a': W (3, 4)}, 13)", lambda: impl.global_magnitude_prune({"a": W}, 13)),
        ("structured_prune(W (5, 2), 6, dim=0)", lambda: impl.structured_prune(rows, 6, dim=0)),
        ("structured_prune(W (5, 2), 1.01, dim=1)", lambda: impl.structured_prune(rows, 1.01, dim=1)),
        ("structured_prune(w (5,), 0.5)", lambda: impl.structured_prune(draw.tensor(5), 0.5)),
    ]
    for name, call in calls:
        try:
            call()
        except ValueError:
            continue
        except Exception as exc:  # noqa: BLE001 - any other error is the wrong one
            raise CheckFailure(f"{name} raised {type(exc).__name__}: {exc}; expected ValueError") from None
        raise CheckFailure(
            f"{name} returned a mask; expected ValueError",
            hint="a float amount is a fraction in [0, 1], an int a count in 0..n; "
            "structured pruning needs 2 or more dims",
        )


@pytest.mark.points(1)
def test_edge_amounts_and_the_masks_form(impl, draw):
    W = draw.tensor(4, 5, dtype=torch.float64).requires_grad_(True)  # a parameter, say
    for amount, pruned in [(0.0, 0), (1.0, 20), (0, 0), (20, 20), (1, 1), (0.05, 1)]:
        with unchanged(W, names=["W"]):
            mask = impl.magnitude_prune(W, amount)
        assert_close(
            mask,
            support.magnitude_mask(W, amount),
            name=f"magnitude_prune(W (4, 5), amount={amount!r})",
            hint="an int amount is a count (1 prunes one weight), a float a fraction (1.0 prunes all)",
        )
        check_equal(int((~torch.as_tensor(mask)).sum()), pruned, name=f"weights pruned at amount={amount!r}")
    for amount in (0.0, 1.0):
        assert_close(
            impl.structured_prune(W, amount, dim=1),
            support.structured_mask(W, amount, 1),
            name=f"structured_prune(W (4, 5), amount={amount}, dim=1)",
        )
    check_equal(impl.global_magnitude_prune({}, 0.5), {}, name="global_magnitude_prune({}, 0.5)")


# (n, amount) where round(amount * n) and int(amount * n) differ, or where the half goes
# to the even integer: 0.29 * 100 = 28.999999999999996, 0.57 * 100 = 56.99999999999999,
# 0.5 * 7 = 3.5 -> 4, 0.25 * 10 = 2.5 -> 2, 0.75 * 10 = 7.5 -> 8, 0.7 * 9 = 6.3 -> 6.
COUNT_CASES = [(100, 0.29), (100, 0.57), (7, 0.5), (10, 0.25), (10, 0.75), (9, 0.7), (6, 0.95), (3, 0.5)]


@pytest.mark.points(1)
def test_the_count_is_python_round(impl, draw):
    for n, amount in COUNT_CASES:
        W = draw.tensor(n)
        assert_close(
            impl.magnitude_prune(W, amount),
            support.magnitude_mask(W, amount),
            name=f"magnitude_prune of {n} weights, amount={amount}",
            hint=f"k = round({amount} * {n}) = {round(amount * n)} (Python's round: halves to even)",
            suspects=mistakes.on("magnitude_prune", W, amount),
        )
        rows = draw.tensor(n, 3)
        assert_close(
            impl.structured_prune(rows, amount, dim=0),
            support.structured_mask(rows, amount, 0),
            name=f"structured_prune of {n} rows, amount={amount}",
            suspects=mistakes.on("structured_prune", rows, amount, dim=0),
        )
        params = {"a": draw.tensor(n - n // 2), "b": draw.tensor(n // 2, 1)}
        support.check_global_masks(
            impl.global_magnitude_prune(params, amount),
            params,
            amount,
            name=f"global_magnitude_prune of {n} weights, amount={amount}",
        )


# --- pruning against torch.nn.utils.prune (7 points) ----------------------------------


@pytest.mark.points(2)
@settings(max_examples=40)
@given(case=support.prune_case(max_dims=4, max_size=7))
def test_magnitude_prune_matches_torch_prune(impl, case):
    shape, dtype, amount, seed = case
    W = Draw(seed).tensor(*shape, dtype=dtype)
    with unchanged(W, names=["W"]):
        mask = impl.magnitude_prune(W, amount)
    assert_close(
        mask,
        support.magnitude_mask(W, amount),
        name=f"magnitude_prune(W {shape} {dtype}, amount={amount!r})",
        hint="a bool mask of W's shape, False at the k smallest |w|",
        suspects=mistakes.on("magnitude_prune", W, amount),
    )


@st.composite
def tied_rows(draw_st):
    """A weight whose slices along `dim` repeat each other up to sign and order: equal norms."""
    n_slices, width = draw_st(st.integers(2, 7)), draw_st(st.integers(1, 4))
    seed = draw_st(SEEDS)
    distinct = support.grid_weights((draw_st(st.integers(1, n_slices)), width), seed)
    rng = Draw(seed + 1)
    rows = []
    for _ in range(n_slices):
        row = distinct[int(rng.integers(0, distinct.shape[0]))]
        signs = torch.as_tensor(rng.integers(0, 2, size=width) * 2 - 1, dtype=row.dtype)
        rows.append((row * signs)[torch.as_tensor(rng.rng.permutation(width))])
    W = torch.stack(rows)
    dim = draw_st(st.sampled_from([0, 1, -1]))
    if dim != 0:
        W = W.T.contiguous()
    return W, dim, draw_st(support.amounts(n_slices))


@pytest.mark.points(2)
@settings(max_examples=30)
@given(
    case=support.prune_case(max_size=6),
    shapes=st.lists(st.lists(st.integers(1, 4), min_size=1, max_size=2), min_size=1, max_size=3),
    global_amount=st.floats(0, 1),
    rows=tied_rows(),
)
def test_ties_are_pruned_lower_index_first(impl, case, shapes, global_amount, rows):
    shape, dtype, amount, seed = case
    W = support.grid_weights(shape, seed, dtype, levels=2)
    assert_close(
        impl.magnitude_prune(W, amount),
        support.magnitude_mask(W, amount),
        name=f"magnitude_prune(W {shape} {dtype} of tied magnitudes, amount={amount!r})",
        hint="exactly k pruned; among equal |w| the lower flat index first",
        suspects=mistakes.on("magnitude_prune", W, amount),
    )
    params = {
        f"t{i}": support.grid_weights(tuple(s), seed + i, dtype, levels=2) for i, s in enumerate(shapes)
    }
    support.check_global_masks(
        impl.global_magnitude_prune(params, global_amount),
        params,
        global_amount,
        name=f"global_magnitude_prune(tied tensors {[tuple(s) for s in shapes]}, amount={global_amount!r})",
        hint="among equal |w|: earlier tensors of the dict first, then the lower flat index",
    )
    R, dim, row_amount = rows
    assert_close(
        impl.structured_prune(R, row_amount, dim=dim),
        support.structured_mask(R, row_amount, dim),
        name=f"structured_prune(W {tuple(R.shape)} with slices of equal norm, "
        f"amount={row_amount!r}, dim={dim})",
        hint="among slices of equal L2 norm, the lower index is pruned first",
        suspects=mistakes.on("structured_prune", R, row_amount, dim=dim),
    )


@pytest.mark.points(1)
@settings(max_examples=30)
@given(case=support.global_case(max_tensors=4, max_size=6))
def test_global_prune_matches_torch_prune(impl, case):
    shapes, scales, dtype, amount, seed = case
    params = support.global_inputs(shapes, scales, dtype, seed)
    before = {name: W.clone() for name, W in params.items()}
    got = impl.global_magnitude_prune(params, amount)
    support.check_global_masks(
        got,
        params,
        amount,
        name=f"global_magnitude_prune(shapes {shapes}, scales {scales}, {dtype}, amount={amount!r})",
        hint="one ranking of every |w| of every tensor; prune round(amount * total)",
    )
    for name, W in params.items():
        if not torch.equal(W, before[name]):
            raise CheckFailure(f"global_magnitude_prune modified params[{name!r}] in place")


@pytest.mark.points(2)
@settings(max_examples=30)
@given(case=support.structured_case(max_dims=4))
def test_structured_prune_matches_torch_prune(impl, case):
    shape, dim, dtype, amount, seed = case
    W = Draw(seed).tensor(*shape, dtype=dtype)
    with unchanged(W, names=["W"]):
        mask = impl.structured_prune(W, amount, dim=dim)
    assert_close(
        mask,
        support.structured_mask(W, amount, dim),
        name=f"structured_prune(W {shape} {dtype}, amount={amount!r}, dim={dim})",
        hint="slice i = W.select(dim, i), ranked by sqrt(sum of w^2) over every other dim",
        suspects=mistakes.on("structured_prune", W, amount, dim=dim),
    )


# --- distillation (4 points) --------------------------------------------------------

GRADER_TEMPERATURES = st.one_of(st.floats(0.25, 8.0), st.sampled_from([1.0, 2.0, 4.0]))
GRADER_ALPHAS = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0]))


@pytest.mark.points(2)
@settings(max_examples=40)
@given(
    case=support.distill_case(temperatures=GRADER_TEMPERATURES, alphas=GRADER_ALPHAS),
    vocab=st.integers(1, 12),
    batch=st.lists(st.integers(1, 4), max_size=3).map(tuple),
    scale=st.sampled_from([0.5, 2.0, 5.0]),
)
def test_distillation_matches_kl_div_and_cross_entropy(impl, case, vocab, batch, scale):
    case = {**case, "vocab": vocab, "batch": batch, "scale": scale}
    student, teacher, labels = support.distill_inputs(case)
    T, alpha = case["T"], case["alpha"]
    with unchanged(student, teacher, labels, names=["student_logits", "teacher_logits", "labels"]):
        loss = impl.distillation_loss(student, teacher, labels, T=T, alpha=alpha)
    assert_close(
        loss,
        support.distillation_oracle(student, teacher, labels, T, alpha),
        name=support.describe_distill(case),
        hint="alpha * T**2 * KL(p_teacher || p_student) (sum over V, mean over all positions) "
        "+ (1 - alpha) * mean cross-entropy at T = 1; a 0-dim tensor of the logits' dtype",
        suspects=mistakes.on("distillation_loss", student, teacher, labels, T=T, alpha=alpha),
    )


@pytest.mark.points(1)
@settings(max_examples=8)
@given(case=support.distill_case(temperatures=GRADER_TEMPERATURES, alphas=GRADER_ALPHAS))
def test_no_gradient_flows_to_the_teacher(impl, case):
    case = {**case, "dtype": torch.float64, "batch": case["batch"][:1]}
    student, teacher, labels = support.distill_inputs(case)
    T, alpha = case["T"], case["alpha"]
    one = torch.tensor(1.0, dtype=torch.float64)
    got = value_and_grad(
        impl.distillation_loss, [student, teacher, labels], one, kwargs={"T": T, "alpha": alpha}
    )
    teacher_grad = got.inputs[1]
    if teacher_grad.abs().max() > 0:
        raise mistakes.failure(
            "teacher_not_detached",
            f"{support.describe_distill(case)}: a gradient of norm {float(teacher_grad.norm()):.3g} "
            "reached teacher_logits",
        )
    check_gradients(
        impl.distillation_loss,
        [student],
        kwargs={"teacher_logits": teacher, "labels": labels, "T": T, "alpha": alpha},
        names=["student_logits"],
        hint="keep the loss a torch computation of student_logits (no .item(), .detach() or numpy on it)",
    )


@pytest.mark.points(1)
def test_confident_teacher_and_special_cases(impl, draw):
    for dtype, scale in [(torch.float32, 200.0), (torch.float64, 2000.0)]:
        student = draw.tensor(2, 3, 7, dtype=dtype, scale=scale)
        teacher = draw.tensor(2, 3, 7, dtype=dtype, scale=scale)
        labels = torch.as_tensor(draw.integers(0, 7, size=(2, 3)), dtype=torch.int64)
        out = impl.distillation_loss(student, teacher, labels, T=1.5, alpha=0.6)
        assert_finite(out, name=f"distillation_loss with logits of scale {scale} ({dtype})")
        assert_close(
            out,
            support.distillation_oracle(student, teacher, labels, 1.5, 0.6),
            name=f"distillation_loss with logits of scale {scale} ({dtype})",
            suspects=mistakes.on("distillation_loss", student, teacher, labels, T=1.5, alpha=0.6),
        )
    student = draw.tensor(5, 4, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 3, 0])
    ce = torch.nn.functional.cross_entropy(student, labels)
    assert_close(
        impl.distillation_loss(student, student.clone(), labels, T=3.0, alpha=0.25),
        0.75 * ce,
        name="distillation_loss with the teacher equal to the student (KL = 0), alpha=0.25",
    )
    teacher = draw.tensor(5, 4, dtype=torch.float64)
    assert_close(
        impl.distillation_loss(student, teacher, labels, T=3.0, alpha=1.0),
        9.0 * support.kl_teacher_student(student, teacher, 3.0),
        name="distillation_loss(alpha=1.0, T=3): the soft term alone, 9 * KL",
    )
