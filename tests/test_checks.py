"""Unit tests for llmkit.checks: comparisons, gradient checks, in-place and poison checks."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from llmkit.checks import (
    TOLERANCES,
    CheckFailure,
    as_plain_tensor,
    assert_all_written,
    assert_close,
    assert_finite,
    central_difference,
    check_gradients,
    poison,
    poisoned_allocations,
    unchanged,
    value_and_grad,
)

INF = float("inf")
NAN = float("nan")


# --- CheckFailure ------------------------------------------------------------


def test_check_failure_is_an_assertion_error_and_appends_the_hint():
    exc = CheckFailure("something is off", hint="look here")
    assert isinstance(exc, AssertionError)
    assert str(exc) == "something is off\nHint: look here"
    assert str(CheckFailure("plain")) == "plain"


# --- assert_close: passing cases ---------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "delta"),
    [(torch.float64, 1e-12), (torch.float32, 5e-6), (torch.float16, 9.765625e-4)],
)
def test_assert_close_passes_within_the_dtype_tolerance(dtype, delta):
    expected = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=dtype)
    actual = (expected.to(torch.float64) + delta).to(dtype)
    assert actual.dtype == dtype and not torch.equal(actual, expected)  # a real difference
    assert_close(actual, expected)


@pytest.mark.parametrize(
    ("dtype", "delta"),
    [(torch.float64, 1e-8), (torch.float32, 1e-4), (torch.float16, 1e-2)],
)
def test_assert_close_fails_beyond_the_dtype_tolerance(dtype, delta):
    expected = torch.tensor([1.0, 2.0], dtype=dtype)
    actual = expected.clone()
    actual[1] = (torch.tensor(2.0, dtype=torch.float64) + delta).to(dtype)
    rtol, atol = TOLERANCES[dtype]
    with pytest.raises(CheckFailure, match=re.escape(f"rtol={rtol:g}, atol={atol:g}")):
        assert_close(actual, expected)


def test_tolerances_table_matches_the_design():
    assert TOLERANCES[torch.float64] == (1e-10, 1e-10)
    assert TOLERANCES[torch.float32] == (1e-5, 1e-5)
    assert TOLERANCES[torch.float16] == (1e-3, 1e-3)


def test_assert_close_explicit_tolerances_override_the_defaults():
    expected = torch.tensor([1.0, 2.0])
    actual = torch.tensor([1.0, 2.05])
    with pytest.raises(CheckFailure):
        assert_close(actual, expected)
    assert_close(actual, expected, atol=0.1)
    with pytest.raises(CheckFailure, match=re.escape("rtol=0.001, atol=0.01")):
        assert_close(actual, expected, rtol=1e-3, atol=1e-2)


def test_assert_close_same_infinities_and_nans_pass():
    expected = torch.tensor([INF, -INF, NAN, 1.0])
    actual = torch.tensor([INF, -INF, NAN, 1.0])
    assert_close(actual, expected)


@pytest.mark.parametrize("got", [-INF, 1e30, 0.0])
def test_assert_close_a_different_value_where_inf_is_expected_fails(got):
    expected = torch.tensor([INF, 1.0])
    actual = torch.tensor([got, 1.0])
    with pytest.raises(CheckFailure, match=r"1 of 2 elements differ.*index \(0,\)"):
        assert_close(actual, expected)


def test_assert_close_inf_where_a_finite_value_is_expected_fails():
    with pytest.raises(CheckFailure, match=r"index \(1,\): expected 2, got inf"):
        assert_close(torch.tensor([1.0, INF]), torch.tensor([1.0, 2.0]))


def test_assert_close_accepts_numpy_arrays_and_python_numbers():
    assert_close(np.array([1.0, 2.0]), torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert_close(1.5, torch.tensor(1.5))
    with pytest.raises(CheckFailure, match="expected 1.5, got 2"):
        assert_close(2.0, torch.tensor(1.5))


def test_assert_close_integer_tensors_compare_exactly():
    assert_close(torch.tensor([1, 2, 3]), torch.tensor([1, 2, 3]))
    with pytest.raises(CheckFailure, match=r"1 of 3 elements differ.*index \(1,\): expected 2, got 5"):
        assert_close(torch.tensor([1, 5, 3]), torch.tensor([1, 2, 3]))


def test_assert_close_ignores_requires_grad_on_the_output():
    expected = torch.tensor([1.0, 2.0])
    actual = torch.tensor([1.0, 2.0], requires_grad=True) * 1
    assert_close(actual, expected)


# --- assert_close: failures and their messages -------------------------------


def test_assert_close_wrong_shape_fails_naming_both_shapes():
    with pytest.raises(CheckFailure, match=re.escape("wrong shape: expected (2, 3), got (3, 2)")):
        assert_close(torch.zeros(3, 2), torch.zeros(2, 3))


def test_assert_close_wrong_shape_fails_even_when_broadcastable():
    with pytest.raises(CheckFailure, match="wrong shape"):
        assert_close(torch.zeros(1, 3), torch.zeros(3))


def test_assert_close_wrong_dtype_fails_naming_both_dtypes():
    expected = torch.ones(3, dtype=torch.float32)
    with pytest.raises(CheckFailure, match="wrong dtype: expected torch.float32, got torch.float64") as info:
        assert_close(torch.ones(3, dtype=torch.float64), expected)
    assert "Hint:" in str(info.value)


def test_assert_close_check_dtype_false_compares_values_only():
    assert_close(torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float32), check_dtype=False)
    with pytest.raises(CheckFailure, match="differ"):
        assert_close(torch.full((3,), 2.0, dtype=torch.float64), torch.ones(3), check_dtype=False)


def test_assert_close_failure_message_names_tolerance_worst_index_and_values():
    expected = torch.zeros(2, 3)
    actual = torch.zeros(2, 3)
    actual[0, 1] = 0.25
    actual[1, 2] = 0.75  # the worst
    with pytest.raises(CheckFailure) as info:
        assert_close(actual, expected, name="attention weights", hint="check your scaling")
    msg = str(info.value)
    assert msg.startswith("attention weights: 2 of 6 elements differ")
    assert "dtype torch.float32" in msg
    assert "rtol=1e-05" in msg and "atol=1e-05" in msg
    assert "Worst at index (1, 2): expected 0, got 0.75" in msg
    assert "|diff| 0.75" in msg
    assert msg.endswith("\nHint: check your scaling")


def test_assert_close_scalar_failure_reports_the_empty_index():
    with pytest.raises(CheckFailure, match=re.escape("Worst at index (): expected 1, got 1.5")):
        assert_close(torch.tensor(1.5), torch.tensor(1.0))


def test_assert_close_nan_where_none_expected_fails():
    expected = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    actual = expected.clone()
    actual[1, 0] = NAN
    with pytest.raises(CheckFailure) as info:
        assert_close(actual, expected)
    msg = str(info.value)
    assert "1 of 4 elements are NaN" in msg
    assert "index (1, 0): expected 3, got nan" in msg
    assert "Hint:" in msg


def test_assert_close_a_number_where_nan_is_expected_fails():
    with pytest.raises(CheckFailure, match="NaN where they should not be"):
        assert_close(torch.tensor([0.0, 1.0]), torch.tensor([NAN, 1.0]))


def test_assert_close_custom_hint_replaces_the_nan_hint():
    with pytest.raises(CheckFailure, match="Hint: subtract the row max") as info:
        assert_close(torch.tensor([NAN]), torch.tensor([0.0]), hint="subtract the row max")
    assert "exp() overflow" not in str(info.value)


@pytest.mark.parametrize(
    ("value", "type_name"), [([1.0, 2.0], "list"), (None, "NoneType"), ((1.0,), "tuple"), ("1", "str")]
)
def test_assert_close_non_tensor_output_names_the_type(value, type_name):
    with pytest.raises(CheckFailure, match=f"my_fn: expected a tensor, got {type_name}"):
        assert_close(value, torch.tensor([1.0, 2.0]), name="my_fn")


# --- assert_close: tensor subclasses cannot lie ------------------------------


class _AlwaysEqual(torch.Tensor):
    """Claims equality with anything and answers every torch function with True."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return torch.tensor(True)


def _mimic(expected: torch.Tensor):
    class Mimic(torch.Tensor):
        """Answers every torch function with the expected values."""

        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return expected.clone()

    return Mimic


def test_assert_close_subclass_with_lying_eq_does_not_pass():
    expected = torch.tensor([1.0, 2.0, 3.0])
    wrong = torch.tensor([9.0, 9.0, 9.0]).as_subclass(_AlwaysEqual)
    assert wrong == expected  # the lie is real
    with pytest.raises(CheckFailure, match="got the subclass _AlwaysEqual"):
        assert_close(wrong, expected)


def test_assert_close_subclass_answering_torch_functions_with_expected_does_not_pass():
    expected = torch.tensor([1.0, 2.0, 3.0])
    wrong = torch.tensor([0.0, 2.0, 3.0]).as_subclass(_mimic(expected))
    assert torch.equal(torch.abs(wrong), expected)  # the lie is real
    with pytest.raises(CheckFailure, match="got the subclass Mimic"):
        assert_close(wrong, expected)


def test_assert_close_rejects_subclass_on_either_side():
    expected = torch.tensor([1.0, 2.0]).as_subclass(_AlwaysEqual)
    with pytest.raises(CheckFailure, match="expected: expected a plain torch.Tensor, got the subclass"):
        assert_close(torch.tensor([5.0, 2.0]), expected)
    with pytest.raises(
        CheckFailure, match="output: expected a plain torch.Tensor, got the subclass _AlwaysEqual"
    ):
        assert_close(torch.tensor([1.0, 2.0]).as_subclass(_AlwaysEqual), torch.tensor([1.0, 2.0]))


def test_as_plain_tensor_keeps_a_numpy_scalars_dtype():
    assert as_plain_tensor(np.float64(1.5)).dtype == torch.float64
    assert as_plain_tensor(np.int32(3)).item() == 3


def test_as_plain_tensor_accepts_parameters_and_copies():
    src = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    plain = as_plain_tensor(src)
    assert type(plain) is torch.Tensor
    assert not plain.requires_grad
    plain.add_(1.0)  # a copy: the original is untouched
    assert src.detach().tolist() == [1.0, 2.0]
    assert plain.tolist() == [2.0, 3.0]


# --- assert_finite -----------------------------------------------------------


def test_assert_finite():
    assert_finite(torch.tensor([1.0, -2.0, 0.0]))
    assert_finite(torch.tensor([1, 2]))  # integers are always finite
    with pytest.raises(CheckFailure, match=r"logits: 2 of 3 elements are NaN or inf; first at index \(1,\)"):
        assert_finite(torch.tensor([1.0, INF, NAN]), name="logits")


# --- gradients ---------------------------------------------------------------


class _WrongSin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x.sin()  # should be cos


def _inputs(*shape, seed=0, n=2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(n)]


def test_check_gradients_passes_for_a_correct_function():
    check_gradients(lambda x, y: (x * y).sin(), _inputs(3, 4), names=["x", "y"])


def test_check_gradients_accepts_float32_inputs():
    x = torch.randn(5, generator=torch.Generator().manual_seed(1)).requires_grad_()
    check_gradients(lambda t: t.exp() * t, [x])


def test_check_gradients_fails_for_a_wrong_backward():
    x = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64).requires_grad_()
    with pytest.raises(CheckFailure, match=r"gradient w\.r\.t\. x: \d+ of 5 elements differ") as info:
        check_gradients(_WrongSin.apply, [x], names=["x"], hint="d sin = cos")
    assert "Hint: d sin = cos" in str(info.value)


def test_check_gradients_wrong_gradient_for_one_input_names_that_input():
    def f(x, y):
        return _WrongSin.apply(y) + x * 2

    with pytest.raises(CheckFailure, match=r"gradient w\.r\.t\. values"):
        check_gradients(f, _inputs(4), names=["keys", "values"])


def test_check_gradients_detached_output_fails_with_a_clear_message():
    with pytest.raises(CheckFailure, match="does not require grad") as info:
        check_gradients(lambda x: x.detach().sin(), _inputs(3, n=1))
    assert ".detach()" in str(info.value)


def test_check_gradients_no_grad_inside_fn_fails():
    def f(x):
        with torch.no_grad():
            return x * 2

    with pytest.raises(CheckFailure, match="does not require grad"):
        check_gradients(f, _inputs(3, n=1))


def test_check_gradients_unused_input_counts_as_zero_gradient():
    check_gradients(lambda x, y: x.sin(), _inputs(3), names=["x", "y"])


def test_check_gradients_only_checks_inputs_that_require_grad():
    x, y = _inputs(3)
    y.requires_grad_(False)
    check_gradients(lambda a, b: (a * b).sin(), [x, y])


def test_check_gradients_leaves_inputs_unchanged():
    inputs = _inputs(2, 3)
    before = [t.detach().clone() for t in inputs]
    check_gradients(lambda x, y: (x * y).tanh(), inputs)
    for t, b in zip(inputs, before):
        assert torch.equal(t.detach(), b)
        assert t.grad is None


def test_central_difference_numpy_float64_gradient_and_restore():
    x = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, -0.25]])
    original = x.copy()
    grad = central_difference(lambda: float((x**2).sum() + x[0, 0] * x[1, 1]), x)
    expected = 2 * original
    expected[0, 0] += original[1, 1]
    expected[1, 1] += original[0, 0]
    assert grad.shape == x.shape and grad.dtype == np.float64
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-6)
    assert np.array_equal(x, original)


def test_central_difference_torch_float64_gradient_and_restore():
    x = torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64)
    original = x.clone()
    grad = central_difference(lambda: float(x.sin().sum()), x)
    np.testing.assert_allclose(grad, original.cos().numpy(), rtol=1e-8)
    assert torch.equal(x, original)


@pytest.mark.parametrize("x", [np.zeros(3, dtype=np.float32), torch.zeros(3)])
def test_central_difference_rejects_non_float64(x):
    with pytest.raises(TypeError, match="float64"):
        central_difference(lambda: 0.0, x)


# --- unchanged ---------------------------------------------------------------


def test_unchanged_fails_on_in_place_modification():
    x = torch.ones(3)
    with pytest.raises(CheckFailure, match="input 0 was modified in place") as info:
        with unchanged(x):
            x.mul_(2)
    assert "mul_" in str(info.value)  # the hint


def test_unchanged_names_the_modified_tensor():
    q, k = torch.ones(2, 2), torch.zeros(2, 2)
    with pytest.raises(CheckFailure, match="^k was modified in place"):
        with unchanged(q, k, names=["q", "k"]):
            k[1, 1] = 1.0


def test_unchanged_detects_changes_to_integer_tensors():
    ids = torch.tensor([1, 2, 3])
    with pytest.raises(CheckFailure, match="modified in place"):
        with unchanged(ids):
            ids[0] = 7


def test_unchanged_passes_for_out_of_place_code():
    x = torch.tensor([1.0, NAN, 3.0])
    with unchanged(x):
        y = x * 2
        x = x + 1  # rebinding the name is not an in-place change
    assert y[0].item() == 2.0


def test_unchanged_passes_when_nothing_happens():
    x = torch.tensor([[1.0, NAN], [INF, -INF]])
    with unchanged(x):
        pass


# --- poison / poisoned_allocations / assert_all_written ----------------------


def test_poison_fills_floats_with_nan_and_ints_with_the_minimum():
    assert torch.isnan(poison(torch.zeros(4))).all()
    assert (poison(torch.zeros(4, dtype=torch.int32)) == torch.iinfo(torch.int32).min).all()


def test_poisoned_allocations_empty_functions_return_nan():
    with poisoned_allocations():
        a = torch.empty(2, 3)
        b = torch.empty_like(torch.zeros(4, dtype=torch.float64))
        c = torch.empty_strided((2, 2), (1, 2))
        d = torch.zeros(3).new_empty((5,))
        e = torch.empty(3, dtype=torch.int64)
    for t in (a, b, c, d):
        assert torch.isnan(t).all()
    assert b.dtype == torch.float64 and c.stride() == (1, 2) and d.shape == (5,)
    assert (e == torch.iinfo(torch.int64).min).all()


def _originals():
    return (torch.empty, torch.empty_like, torch.empty_strided, torch.Tensor.new_empty)


def test_poisoned_allocations_restores_the_original_functions():
    before = _originals()
    with poisoned_allocations():
        assert torch.empty is not before[0]
        assert torch.Tensor.new_empty is not before[3]
    after = _originals()
    assert all(a is b for a, b in zip(after, before))
    assert torch.empty(2, 3).shape == (2, 3)


def test_poisoned_allocations_restores_after_an_exception():
    before = _originals()
    with pytest.raises(ZeroDivisionError):
        with poisoned_allocations():
            raise ZeroDivisionError("inside the block")
    assert all(a is b for a, b in zip(_originals(), before))


def test_poisoned_allocations_nested_blocks_restore_the_originals():
    before = _originals()
    with poisoned_allocations():
        with poisoned_allocations():
            assert torch.isnan(torch.empty(2)).all()
        assert torch.isnan(torch.empty(2)).all()
    assert all(a is b for a, b in zip(_originals(), before))


def _partial_kernel(x: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    out[:-1] = x[:-1] * 2  # forgets the last element
    return out


def test_poisoned_allocations_exposes_unwritten_elements_to_assert_close():
    x = torch.arange(4.0)
    with poisoned_allocations():
        out = _partial_kernel(x)
    with pytest.raises(CheckFailure, match=r"NaN.*index \(3,\)"):
        assert_close(out, x * 2)


def test_assert_all_written_fails_when_an_element_is_left():
    out = poison(torch.empty(2, 3))
    out[0] = 1.0
    out[1, :2] = 2.0
    with pytest.raises(
        CheckFailure, match=re.escape("buf: 1 of 6 elements were never written; first at index (1, 2)")
    ):
        assert_all_written(out, name="buf")


def test_assert_all_written_passes_when_all_are_written():
    out = poison(torch.empty(2, 3))
    out[:] = torch.arange(6.0).reshape(2, 3)
    assert_all_written(out)


def test_assert_all_written_integer_buffers():
    out = poison(torch.empty(3, dtype=torch.int32))
    out[:2] = 5
    with pytest.raises(CheckFailure, match="1 of 3 elements were never written"):
        assert_all_written(out)
    out[2] = -1
    assert_all_written(out)


# --- regressions: engine bugs found by these tests, now fixed ---------------


def test_unchanged_detects_nan_overwritten_with_zero():
    x = torch.tensor([NAN, 1.0])
    with pytest.raises(CheckFailure, match="modified in place"):
        with unchanged(x):
            x[0] = 0.0


def test_central_difference_non_contiguous_numpy_array():
    x = np.arange(6, dtype=np.float64).reshape(2, 3).T  # a non-contiguous view
    grad = central_difference(lambda: float((x**2).sum()), x)
    np.testing.assert_allclose(grad, 2 * x, atol=1e-6)


def test_poisoned_allocations_bool_buffer():
    with poisoned_allocations():
        mask = torch.empty(3, dtype=torch.bool)
    assert mask.shape == (3,)


def test_poisoned_allocations_requires_grad_buffer():
    with poisoned_allocations():
        w = torch.empty(3, requires_grad=True)
    assert w.requires_grad


def test_poisoned_allocations_leaves_tensor_dict_as_it_was():
    inherited = torch._C.TensorBase.__dict__["new_empty"]
    if torch.Tensor.__dict__.get("new_empty") is inherited:  # left behind by an earlier block
        del torch.Tensor.new_empty
    assert "new_empty" not in torch.Tensor.__dict__
    with poisoned_allocations():
        pass
    assert "new_empty" not in torch.Tensor.__dict__


class _DispatchLiar(torch.Tensor):
    """A wrapper subclass whose __torch_dispatch__ answers every op with ``ANSWER``."""

    ANSWER = torch.tensor([1.0, 2.0, 3.0])

    @staticmethod
    def __new__(cls, elem):
        return torch.Tensor._make_wrapper_subclass(cls, elem.shape, dtype=elem.dtype, device=elem.device)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return cls.ANSWER.clone()


def test_assert_close_dispatch_subclass_cannot_fake_the_expected_values():
    with pytest.raises(CheckFailure):
        assert_close(_DispatchLiar(torch.tensor([9.0, 9.0, 9.0])), torch.tensor([1.0, 2.0, 3.0]))


def test_value_and_grad_nested_inputs_and_outputs():
    a = torch.tensor([1.0, 2.0], dtype=torch.float64)
    b = torch.tensor([3.0, -1.0], dtype=torch.float64)

    def fn(x, pair):
        y, scale = pair
        return x * y * scale, (x + y,)

    weights = (torch.tensor([1.0, 1.0]), (torch.tensor([2.0, 0.5]),))
    got = value_and_grad(fn, [a, (b, 3.0)], weights)
    (prod, (total,)) = got.output
    assert_close(prod, a * b * 3.0)
    assert_close(total, a + b)
    grad_a, (grad_b, grad_scale) = got.inputs
    assert_close(grad_a, b * 3.0 + torch.tensor([2.0, 0.5], dtype=torch.float64))
    assert_close(grad_b, a * 3.0 + torch.tensor([2.0, 0.5], dtype=torch.float64))
    assert grad_scale is None and got.params == {}
    assert a.grad is None and not a.requires_grad  # the caller's tensors are untouched


def test_value_and_grad_params_of_a_module_passed_as_input():
    layer = torch.nn.Linear(3, 2).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    weights = torch.ones(4, 2, dtype=torch.float64)
    got = value_and_grad(lambda inp, mod: mod(inp), [x, layer], weights, params_of=layer)
    assert set(got.params) == {"weight", "bias"}
    assert_close(got.params["bias"], torch.full((2,), 4.0, dtype=torch.float64))
    assert_close(got.params["weight"], x.sum(0).expand(2, 3))
    assert layer.weight.grad is None


def test_value_and_grad_output_structure_mismatch_is_a_check_failure():
    with pytest.raises(CheckFailure, match="expected an output shaped like"):
        value_and_grad(lambda x: (x, x), [torch.ones(2, dtype=torch.float64)], torch.ones(2))
