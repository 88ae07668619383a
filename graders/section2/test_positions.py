"""Hidden graders for exercise 2.2 (sinusoidal positions and RoPE): 15 points.

Oracles, never the reference solution:
* the sinusoidal table: the formula in float64 (support.sinusoidal_table) and, for small
  tables, element by element with Python's ``math.sin`` / ``math.cos``;
* RoPE: 2 x 2 rotation matrices applied to the (j, j + d/2) pairs (here), and the
  complex-plane closed form of the support module (support.rope_oracle), both in float64.
  transformers is not a dependency; torch's own RoPE, ``torch.onnx.ops.rotary_embedding``
  (the ONNX operator's eager implementation), agrees with support.rope_oracle to 1e-12 in
  both layouts (checked when this exercise was written), but its first call imports sympy
  or torch._dynamo (2-10 s), too slow for a grader;
* properties: norms are kept, <rope(q, m), rope(k, n)> depends on m - n only, rows at
  arbitrary positions equal rows computed alone.
Inputs come from hypothesis (shapes, dtypes, kinds of positions) and seeded generators
(values); the run's seed is printed and replayable with --seed.
"""

import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    SEEDS,
    CheckFailure,
    Draw,
    assert_close,
    check_gradients,
    load_support,
    unchanged,
)

pytestmark = pytest.mark.exercise("2.2")
support = load_support("2.2")
mistakes = support.MISCONCEPTIONS
FLOATS = (torch.float32, torch.float64)


def matrix_rope(x: torch.Tensor, positions, theta: float) -> torch.Tensor:
    """RoPE as 2 x 2 rotation matrices, in float64, in x's dtype: pair j of row t is the
    column vector (x[j], x[j + d/2]), multiplied by [[cos a, -sin a], [sin a, cos a]] with
    a = positions[..., t] * theta ** (-2j / d)."""
    d = x.shape[-1]
    h = d // 2
    exponents = torch.tensor([-2.0 * j / d for j in range(h)], dtype=torch.float64)
    a = torch.as_tensor(positions).to(torch.float64)[..., None] * torch.pow(theta, exponents)
    rotations = torch.stack([torch.stack([a.cos(), -a.sin()], -1), torch.stack([a.sin(), a.cos()], -1)], -2)
    x64 = x.to(torch.float64)
    pairs = torch.stack([x64[..., :h], x64[..., h:]], dim=-1)  # (..., T, d/2, 2)
    turned = torch.einsum("...ij,...j->...i", rotations, pairs)
    return torch.cat([turned[..., 0], turned[..., 1]], dim=-1).to(x.dtype)


def python_table(T: int, d: int, base: float) -> torch.Tensor:
    """The table element by element with the math module."""
    rows = [
        [(math.sin if j % 2 == 0 else math.cos)(p / base ** (2 * (j // 2) / d)) for j in range(d)]
        for p in range(T)
    ]
    return torch.tensor(rows, dtype=torch.float64).reshape(T, d)


# --- cheap checks first: a mutant stops at its first lost point ---------------------


@pytest.mark.points(1)
def test_invalid_sizes_raise_and_edge_cases(impl, draw):
    for d in (1, 3, 7):
        with pytest.raises(ValueError):
            impl.rope(draw.tensor(2, d), torch.arange(2))
    for T, d in ((-1, 4), (4, 0)):
        with pytest.raises(ValueError):
            impl.sinusoidal_positions(T, d)
    support.check_table(impl.sinusoidal_positions(0, 6), 0, 6)
    support.check_table(impl.sinusoidal_positions(3, 1), 3, 1)
    empty, positions = draw.tensor(2, 0, 4), torch.zeros(0, dtype=torch.int64)
    support.check_rope(impl.rope(empty, positions), empty, positions)
    x = draw.tensor(3, 1, 8, dtype=torch.float64)
    at_zero = torch.zeros(1, dtype=torch.int64)
    assert_close(impl.rope(x, at_zero), x, name="rope at position 0 (the identity)")


@pytest.mark.points(2)
@settings(max_examples=40)
@given(case=support.table_case(max_t=300, max_d=70, bases=(10000.0, 100.0, 1000.0, 7.5, 123456.0)))
@example(case=(6, 8, 10000.0))
def test_sinusoidal_table(impl, case):
    T, d, base = case
    got = impl.sinusoidal_positions(T, d, base)
    support.check_table(got, T, d, base)
    if T <= 40 and d <= 24:
        rtol, atol = support.table_tolerance(T)
        assert_close(
            got,
            python_table(T, d, base).float(),
            name=f"sinusoidal_positions({T}, {d}, base={base:g}) against math.sin / math.cos",
            rtol=rtol,
            atol=atol,
        )


@pytest.mark.points(1)
def test_sinusoidal_long_table(impl):
    T, d = 4096, 128
    table = impl.sinusoidal_positions(T, d)
    support.check_table(table, T, d)
    # Nearby positions are nearer than far ones: the dot product of rows decays with distance.
    rows = torch.as_tensor(table).to(torch.float64)
    near, far = float(rows[1000] @ rows[1001]), float(rows[1000] @ rows[3000])
    if not near > far:
        raise CheckFailure(f"row 1000 . row 1001 = {near:.3f} should exceed row 1000 . row 3000 = {far:.3f}")


@pytest.mark.points(3)
@settings(max_examples=60)
@given(case=support.rope_case(dtypes=FLOATS, max_t=8, max_pairs=16))
@example(
    case=dict(batch=(2,), T=3, d=8, dtype=torch.float64, kind="offset", theta=1e4, max_position=3000, seed=1)
)
def test_rope_matches_rotation_matrices(impl, case):
    x, positions = support.rope_inputs(case)
    theta = case["theta"]
    rtol, atol = support.rope_tolerance(x, positions)
    assert_close(
        impl.rope(x, positions, theta),
        matrix_rope(x, positions, theta),
        name=support.describe_rope_call(x, positions, theta),
        rtol=rtol,
        atol=atol,
        hint=support.ROPE_HINT,
        suspects=mistakes.on("rope", x, positions, theta),
    )


@pytest.mark.points(2)
@settings(max_examples=30)
@given(
    case=support.rope_case(
        dtypes=FLOATS, kinds=("offset", "random", "fractional", "batched", "broadcast"), max_t=16
    ),
    far=st.booleans(),
)
def test_rope_at_arbitrary_positions(impl, case, far):
    if far:  # float64 only: positions up to 10^5 (a long context)
        case = {**case, "dtype": torch.float64, "max_position": 100_000}
    x, positions = support.rope_inputs(case)
    theta = case["theta"]
    got = impl.rope(x, positions, theta)
    support.check_rope(got, x, positions, theta)
    # Row t depends on positions[..., t] only: computed alone, it is the same.
    t = x.shape[-2] - 1
    p = torch.as_tensor(positions).expand(x.shape[:-1])
    alone = impl.rope(x[..., t : t + 1, :], p[..., t : t + 1], theta)
    rtol, atol = support.rope_tolerance(x, positions)
    assert_close(
        torch.as_tensor(got)[..., t : t + 1, :],
        alone,
        name=f"row {t} of {support.describe_rope_call(x, positions, theta)} against that row alone",
        rtol=rtol,
        atol=2 * atol,
        hint="each row is rotated by its own position, whatever the other rows hold",
    )


@pytest.mark.points(2)
@settings(max_examples=20)
@given(case=support.rope_case(dtypes=support.HALF_DTYPES, kinds=("offset", "random", "batched", "broadcast")))
@example(
    case=dict(batch=(2,), T=4, d=8, dtype=torch.bfloat16, kind="offset", theta=1e4, max_position=3000, seed=3)
)
@example(
    case=dict(batch=(), T=4, d=16, dtype=torch.float16, kind="offset", theta=1e4, max_position=3000, seed=4)
)
def test_rope_half_precision(impl, case):
    x, positions = support.rope_inputs(case)
    theta = case["theta"]
    support.check_rope(impl.rope(x, positions, theta), x, positions, theta, rope_fn=impl.rope)


@pytest.mark.points(2)
@settings(max_examples=25)
@given(seed=SEEDS, pairs=st.integers(1, 32), theta=st.sampled_from(support.THETAS))
def test_rope_scores_depend_on_m_minus_n_only(impl, seed, pairs, theta):
    rng, d = Draw(seed), 2 * pairs
    q, k = rng.tensor(d, dtype=torch.float64), rng.tensor(d, dtype=torch.float64)
    m = torch.as_tensor(rng.integers(-100, 5000, size=8))
    n = torch.as_tensor(rng.integers(-100, 5000, size=8))
    shift = int(rng.integers(1, 20000))
    scores = support.pair_scores(impl.rope, q, k, m, n, theta)
    scale = float(q.norm() * k.norm())
    assert_close(
        support.pair_scores(impl.rope, q, k, m + shift, n + shift, theta),
        scores,
        name=f"<rope(q, m + {shift}), rope(k, n + {shift})> against <rope(q, m), rope(k, n)> (d={d})",
        rtol=1e-9,
        atol=1e-9 * scale,
        hint="rotating q by m w and k by n w leaves their dot product a function of (m - n) w",
    )
    assert_close(
        scores,
        support.pair_scores(support.rope_oracle, q, k, m, n, theta),
        name=f"<rope(q, m), rope(k, n)> (d={d}, theta={theta:g})",
        rtol=1e-9,
        atol=1e-9 * scale,
        hint=support.ROPE_HINT,
    )


@pytest.mark.points(1)
@settings(max_examples=15)
@given(case=support.rope_case(dtypes=(torch.float64,), max_t=8, max_pairs=16, max_position=50_000))
def test_rope_keeps_norms(impl, case):
    x, positions = support.rope_inputs(case)
    x = x * 1e3
    got = torch.as_tensor(impl.rope(x, positions, case["theta"]))
    assert_close(
        got.norm(dim=-1),
        x.norm(dim=-1),
        name=f"the norm of each row of {support.describe_rope_call(x, positions, case['theta'])}",
        rtol=1e-10,
        atol=1e-9,
        hint="a rotation keeps lengths: each pair (x[j], x[j + d/2]) turns, it does not stretch",
    )


@pytest.mark.points(1)
def test_rope_leaves_inputs_alone_and_has_gradients(impl, draw):
    x = draw.tensor(2, 5, 8, dtype=torch.float64)
    positions = torch.tensor([[3, 1, 4, 1, 5], [900, 26, 5, 35, 8]])
    with unchanged(x, positions, names=["x", "positions"]):
        got = impl.rope(x, positions, 500.0)
    support.check_rope(got, x, positions, 500.0)
    check_gradients(
        impl.rope,
        [x],
        kwargs={"positions": positions, "theta": 500.0},
        names=["x"],
        hint="keep the computation in torch ops on x (no .detach() / .item() / numpy)",
    )
