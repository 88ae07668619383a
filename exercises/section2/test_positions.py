"""Public tests for exercise 2.2 (sinusoidal positions and RoPE). Run: pytest exercises/section2

They draw sizes, dtypes and positions at random (a few examples each, plus fixed cases)
and compare with the formulas in float64 (exercises/support/section2/positions.py: RoPE
there is computed in the complex plane). When a check fails it says which known mistake
your output looks like. The hidden graders draw many more examples and also check norms,
gradients, the relative-position property at length and that x is left alone.
"""

import pytest
import torch
from hypothesis import example, given, settings

from llmkit.testing import Draw, assert_close, load_support

pytestmark = pytest.mark.exercise("2.2")
support = load_support("2.2")

# Fixed cases every run checks, beside hypothesis's random ones.
OFFSET_CASE = dict(
    batch=(2,), T=3, d=8, dtype=torch.float64, kind="offset", theta=10000.0, max_position=3000, seed=1
)
BATCHED_CASE = {**OFFSET_CASE, "batch": (2, 3), "kind": "broadcast", "dtype": torch.float32, "seed": 2}
HALF_CASE = {**OFFSET_CASE, "T": 4, "dtype": torch.bfloat16, "seed": 3}


@settings(max_examples=10)
@given(case=support.table_case())
@example(case=(6, 8, 10000.0))
@example(case=(5, 7, 100.0))
def test_sinusoidal_table_matches_the_formula(impl, case):
    T, d, base = case
    support.check_table(impl.sinusoidal_positions(T, d, base), T, d, base)


def test_sinusoidal_table_default_base(impl):
    support.check_table(impl.sinusoidal_positions(50, 16), 50, 16)


@settings(max_examples=12)
@given(case=support.rope_case(dtypes=(torch.float32, torch.float64)))
@example(case=OFFSET_CASE)
@example(case=BATCHED_CASE)
def test_rope_matches_the_formula(impl, case):
    x, positions = support.rope_inputs(case)
    support.check_rope(impl.rope(x, positions, case["theta"]), x, positions, case["theta"])


def test_rope_default_theta(impl, draw):
    x, positions = draw.tensor(2, 5, 6), torch.tensor([7, 3, 0, 12, 400])
    support.check_rope(impl.rope(x, positions), x, positions)


@settings(max_examples=6)
@given(case=support.rope_case(dtypes=support.HALF_DTYPES, kinds=("offset", "random", "batched")))
@example(case=HALF_CASE)
def test_rope_in_half_precision_keeps_dtype_and_angles(impl, case):
    x, positions = support.rope_inputs(case)
    support.check_rope(impl.rope(x, positions, case["theta"]), x, positions, case["theta"], rope_fn=impl.rope)


@settings(max_examples=5)
@given(case=support.rope_case(dtypes=(torch.float64,), kinds=("arange",), min_pairs=2))
def test_rope_scores_depend_on_m_minus_n_only(impl, case):
    rng = Draw(case["seed"])
    q, k = rng.tensor(case["d"], dtype=torch.float64), rng.tensor(case["d"], dtype=torch.float64)
    m = torch.as_tensor(rng.integers(0, 2000, size=6))
    shift = int(rng.integers(1, 5000))
    scores = support.pair_scores(impl.rope, q, k, m, m + 3)
    shifted = support.pair_scores(impl.rope, q, k, m + shift, m + 3 + shift)
    assert_close(
        shifted,
        scores,
        name=f"<rope(q, m + {shift}), rope(k, m + 3 + {shift})> against <rope(q, m), rope(k, m + 3)>",
        rtol=1e-9,
        atol=1e-9,
        hint="rotating q by m w and k by n w leaves their dot product a function of (m - n) w",
    )


def test_odd_d_and_bad_sizes_raise_value_error(impl, draw):
    with pytest.raises(ValueError):
        impl.rope(draw.tensor(3, 5), torch.arange(3))
    for T, d in ((-1, 4), (3, 0)):
        with pytest.raises(ValueError):
            impl.sinusoidal_positions(T, d)
