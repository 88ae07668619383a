"""Support for exercise 2.2 (sinusoidal positions and RoPE): what its public tests, graders,
notebook and `llmkit show` share.

* :func:`sinusoidal_table` — the transformer paper's table, its formula written out in
  float64 (a sin and a cos per pair, stacked and flattened). The keyword options give the
  tables of two known mistakes.
* :func:`rope_oracle` — RoPE in the complex plane, in float64: each pair of features is
  one complex number, multiplied by e^(i m w). The half-split pairs (j, j + d/2) are built
  with ``torch.complex``, the interleaved ones (2j, 2j + 1) with ``torch.view_as_complex``
  (Meta's original form). Nothing here is a rotate_half to copy.
* :func:`rope_tolerance` — how far a correct float32 / float16 / bfloat16 answer may be
  from the float64 one: angles of late positions carry a rounding error that grows with
  the position.
* :func:`rope_case` / :func:`rope_inputs` and :func:`table_case` — the hypothesis
  strategies both the public tests and the graders draw from.
* :func:`pair_scores` — <rope(q, m), rope(k, n)> for many (m, n) pairs in one batched call.
* :data:`MISCONCEPTIONS` and :func:`figure` (your table, and your RoPE scores against m - n).
"""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import (
    SEEDS,
    CheckFailure,
    Draw,
    Misconception,
    Misconceptions,
    assert_close,
    batch_shapes,
)

HALF_DTYPES = (torch.float16, torch.bfloat16)
ALL_DTYPES = (torch.float32, torch.float64, *HALF_DTYPES)
# The gap between 1.0 and the next number of each dtype.
EPS = {torch.float64: 2.0**-52, torch.float32: 2.0**-23, torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}
DEFAULT_TOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 1e-2}


# --- the oracles: closed forms in float64 ------------------------------------------


def sinusoidal_table(
    T: int, d: int, base: float = 10000.0, *, exponent: float = 2.0, layout: str = "interleaved"
) -> torch.Tensor:
    """PE[p, 2i] = sin(p w_i), PE[p, 2i + 1] = cos(p w_i), w_i = base ** (-exponent * i / d),
    in float64 (the exercise's table has exponent 2). ``layout="concatenated"`` puts all
    the sin columns first, then all the cos columns."""
    pairs = (d + 1) // 2
    w = base ** (-exponent * torch.arange(pairs, dtype=torch.float64) / d)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * w  # (T, pairs)
    if layout == "concatenated":
        return torch.cat([angles.sin(), angles.cos()], dim=1)[:, :d]
    return torch.stack([angles.sin(), angles.cos()], dim=2).reshape(T, 2 * pairs)[:, :d]


def rope_angles(positions, d: int, theta: float, *, exponent: float = 2.0, dtype=torch.float64):
    """m * w_j for every position m and pair j: (..., T, d/2), w_j = theta ** (-exponent j / d)."""
    w = theta ** (-exponent * torch.arange(d // 2, dtype=dtype) / d)
    return torch.as_tensor(positions).to(dtype)[..., None] * w


def rotate_pairs(x: torch.Tensor, angles: torch.Tensor, layout: str = "half_split") -> torch.Tensor:
    """``x``'s feature pairs turned by ``angles`` (..., T, d/2) as complex products, in float64,
    returned in x's dtype. Half-split pairs are (j, j + d/2), interleaved ones (2j, 2j + 1)."""
    x64, h = x.to(torch.float64), x.shape[-1] // 2
    turn = torch.polar(torch.ones_like(angles, dtype=torch.float64), angles.to(torch.float64))
    if layout == "half_split":
        z = torch.complex(x64[..., :h], x64[..., h:]) * turn
        out = torch.cat([z.real, z.imag], dim=-1)
    else:
        z = torch.view_as_complex(x64.reshape(*x.shape[:-1], h, 2).contiguous()) * turn
        out = torch.view_as_real(z).flatten(-2)
    return out.to(x.dtype)


def rope_oracle(x, positions, theta: float = 10000.0, *, layout: str = "half_split", exponent: float = 2.0):
    """RoPE of ``x`` at ``positions`` in float64, returned in x's dtype (the exercise's is the
    half-split layout with exponent 2; the options compute known mistakes)."""
    return rotate_pairs(x, rope_angles(positions, x.shape[-1], theta, exponent=exponent), layout)


def table_tolerance(T: int) -> tuple[float, float]:
    """(rtol, atol) for a float32 table: float32 angles p * w are off by about p * 1e-7."""
    return 1e-5, 1e-5 + 4 * EPS[torch.float32] * max(T, 1)


def rope_tolerance(x: torch.Tensor, positions) -> tuple[float, float]:
    """(rtol, atol) for ``rope(x, positions)`` against the float64 oracle rounded to x's dtype.

    Angles m * w_j are computed in float32 (float64 for float64 input): their error grows
    with |m| and turns into an error of |x| times as much. Half-precision results may be
    computed in the half dtype (cos and sin cast to it, as Hugging Face does): a few roundings
    of |x|-sized terms."""
    dtype = x.dtype
    max_x = float(x.abs().max()) if x.numel() else 0.0
    p = torch.as_tensor(positions)
    max_m = float(p.abs().max()) if p.numel() else 0.0
    angle_eps = EPS[torch.float64] if dtype == torch.float64 else EPS[torch.float32]
    atol = DEFAULT_TOL[dtype] + 8 * angle_eps * max_m * max_x
    if dtype in HALF_DTYPES:
        atol += 3 * EPS[dtype] * max_x
    return DEFAULT_TOL[dtype], atol


# --- inputs the public tests and graders draw ----------------------------------------

POSITION_KINDS = ("arange", "offset", "random", "fractional", "batched", "broadcast")
THETAS = (10000.0, 500000.0, 100.0, 1.0e6)


@st.composite
def rope_case(
    draw_st,
    dtypes=ALL_DTYPES,
    kinds=POSITION_KINDS,
    max_t: int = 6,
    max_pairs: int = 8,
    min_pairs: int = 1,
    max_position: int = 3000,
):
    """One call of ``rope``: batch dims, T, d (even), dtype, the kind of positions, theta,
    the largest position and a value seed."""
    return dict(
        batch=draw_st(batch_shapes(max_dims=2)),
        T=draw_st(st.integers(1, max_t)),
        d=2 * draw_st(st.integers(min_pairs, max_pairs)),
        dtype=draw_st(st.sampled_from(dtypes)),
        kind=draw_st(st.sampled_from(kinds)),
        theta=draw_st(st.sampled_from(THETAS)),
        max_position=max_position,
        seed=draw_st(SEEDS),
    )


def rope_inputs(case) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, positions)`` for a :func:`rope_case`.

    * arange: 0 .. T-1; offset: T0 .. T0 + T - 1 with T0 >= 1 (a KV cache's next tokens);
    * random: integers in [-20, max_position), any order, repeats allowed;
    * fractional: float32 positions with a fractional part (position interpolation);
    * batched: one row of positions per batch element, shape (*batch, T);
    * broadcast: like batched, but size 1 in the last batch dim, (..., 1, T), as for heads.
    """
    rng = Draw(case["seed"])
    batch, T, top = case["batch"], case["T"], case["max_position"]
    x = rng.tensor(*batch, T, case["d"], dtype=case["dtype"])
    kind = case["kind"]
    if kind == "arange":
        positions = torch.arange(T)
    elif kind == "offset":
        positions = int(rng.integers(1, top)) + torch.arange(T)
    elif kind == "random":
        positions = torch.as_tensor(rng.integers(-20, top, size=T), dtype=torch.int64)
    elif kind == "fractional":
        steps = torch.as_tensor(rng.integers(1, 4 * top, size=T), dtype=torch.float32)
        positions = steps / 4 + 0.125  # exact in float32
    else:
        shape = batch if kind == "batched" else (*batch[:-1], 1) if batch else ()
        positions = torch.as_tensor(rng.integers(-20, top, size=(*shape, T)), dtype=torch.int64)
    return x, positions


def describe_rope_call(x, positions, theta) -> str:
    p = torch.as_tensor(positions)
    shown = p.tolist() if p.numel() <= 8 else f"{p.flatten()[:6].tolist()} ..."
    return (
        f"rope(x {tuple(x.shape)} {x.dtype}, positions {tuple(p.shape)} {p.dtype} = {shown}, theta={theta:g})"
    )


@st.composite
def table_case(draw_st, max_t: int = 40, max_d: int = 24, bases=(10000.0, 100.0, 1000.0, 7.5)):
    """(T, d, base): T in 0..max_t, d in 1..max_d (odd too), base from ``bases``."""
    return draw_st(st.integers(0, max_t)), draw_st(st.integers(1, max_d)), draw_st(st.sampled_from(bases))


def pair_scores(rope_fn, q: torch.Tensor, k: torch.Tensor, m, n, theta: float = 10000.0) -> torch.Tensor:
    """<rope(q, m_i), rope(k, n_i)> for each i, with one batched call per side: q and k
    (d,) are repeated into (N, 1, d) and the positions are (N, 1)."""
    m, n = torch.as_tensor(m).reshape(-1, 1), torch.as_tensor(n).reshape(-1, 1)
    qs = torch.as_tensor(rope_fn(q.expand(len(m), 1, -1), m, theta))
    ks = torch.as_tensor(rope_fn(k.expand(len(n), 1, -1), n, theta))
    return (qs * ks).sum(dim=-1).flatten()


# --- misconceptions: what each known mistake returns, from the closed forms ----------


def _angles_in_low_precision(x, positions, theta=10000.0):
    """Frequencies and angles computed in x's dtype: in bfloat16 the position 1001 is 1000
    and the angle of a late position is off by whole radians. Then rotated exactly."""
    if x.dtype not in HALF_DTYPES:
        raise ValueError("only half-precision inputs lose their angles")
    d = x.shape[-1]
    w = theta ** (-2.0 * torch.arange(d // 2, dtype=x.dtype) / d)
    angles = torch.as_tensor(positions).to(x.dtype)[..., None] * w
    return rotate_pairs(x, angles)


def _float32_result(x, positions, theta=10000.0):
    """The right numbers, computed in float32 and never cast back to x's half dtype."""
    if x.dtype not in HALF_DTYPES:
        raise ValueError("float32 is the right dtype here")
    return rope_oracle(x.to(torch.float32), positions, theta)


def _positions_ignored(x, positions, theta=10000.0):
    return rope_oracle(x, torch.arange(x.shape[-2]), theta)


MISCONCEPTIONS = Misconceptions(
    "exercises/section2/README.md",
    Misconception(
        "sin_cos_concatenated",
        "the table laid out as [sin | cos]",
        "the paper interleaves them: column 2i is sin(p w_i) and column 2i + 1 is cos(p w_i) of the same "
        "frequency (torch.stack([sin, cos], dim=-1).flatten(-2), not torch.cat([sin, cos], dim=-1))",
        readme="2.2 — Interleaved sin and cos",
        variants={
            "sinusoidal_positions": lambda T, d, base=10000.0: sinusoidal_table(
                T, d, base, layout="concatenated"
            ).float()
        },
    ),
    Misconception(
        "exponent_i_over_d",
        "the frequency exponent is i/d",
        "pair i has frequency base ** (-2i / d): the 2 makes the frequencies span 1 .. 1/base over the "
        "d/2 pairs; with i/d they stop at 1/sqrt(base)",
        readme="2.2 — The frequencies",
        variants={
            "sinusoidal_positions": lambda T, d, base=10000.0: sinusoidal_table(
                T, d, base, exponent=1.0
            ).float(),
            "rope": lambda x, positions, theta=10000.0: rope_oracle(x, positions, theta, exponent=1.0),
        },
    ),
    Misconception(
        "interleaved_layout",
        "RoPE in the interleaved layout",
        "here feature j pairs with j + d/2 (half-split, Llama's rotate_half), not with its neighbour: "
        "the pairs (2j, 2j + 1) of GPT-J / Meta's complex form give other outputs for the same weights",
        readme="2.2 — Two RoPE layouts",
        variants={
            "rope": lambda x, positions, theta=10000.0: rope_oracle(x, positions, theta, layout="interleaved")
        },
    ),
    Misconception(
        "positions_ignored",
        "positions ignored (0 .. T-1 assumed)",
        "rotate row t by positions[..., t], whatever it holds: a KV cache continues at T0, packed "
        "sequences restart at 0, a batch may hold one row of positions per sequence",
        readme="2.2 — Positions are data",
        variants={"rope": _positions_ignored},
    ),
    Misconception(
        "rotation_sign_flipped",
        "the rotation turns the wrong way",
        "out[j] = x[j] cos - x[j + d/2] sin and out[j + d/2] = x[j + d/2] cos + x[j] sin "
        "(rotate_half(x) = [-x2, x1]); the other sign rotates by -m w, the encoding of position -m",
        readme="2.2 — Two RoPE layouts",
        variants={
            "rope": lambda x, positions, theta=10000.0: rope_oracle(x, -torch.as_tensor(positions), theta)
        },
    ),
    Misconception(
        "angles_in_half_precision",
        "angles computed in float16 / bfloat16",
        "compute m * theta ** (-2j / d) in float32 even for half-precision x: bfloat16 keeps 8 bits, so "
        "positions past 256 are rounded and late angles are off by whole radians",
        readme="2.2 — Precision and dtype",
        variants={"rope": _angles_in_low_precision},
    ),
    Misconception(
        "dtype_not_kept",
        "the result comes back in float32",
        "a float32 cos table times a float16 / bfloat16 x promotes the product to float32: cast the result "
        "back to x.dtype",
        readme="2.2 — Precision and dtype",
        variants={"rope": _float32_result},
    ),
)


# --- the checks the public tests and graders share -------------------------------------

ROPE_HINT = (
    "pair feature j with j + d/2; out[j] = x[j] cos(m w_j) - x[j + d/2] sin(m w_j), "
    "out[j + d/2] = x[j + d/2] cos(m w_j) + x[j] sin(m w_j), w_j = theta ** (-2j / d), "
    "m = positions[..., t] for row t"
)


def check_table(got, T: int, d: int, base: float = 10000.0) -> None:
    """The learner's ``sinusoidal_positions(T, d, base)`` against the formula."""
    rtol, atol = table_tolerance(T)
    assert_close(
        got,
        sinusoidal_table(T, d, base).to(torch.float32),
        name=f"sinusoidal_positions({T}, {d}, base={base:g})",
        rtol=rtol,
        atol=atol,
        hint="PE[p, 2i] = sin(p * base ** (-2i / d)), PE[p, 2i + 1] = cos(p * base ** (-2i / d)); float32",
        suspects=MISCONCEPTIONS.on("sinusoidal_positions", T, d, base),
    )


def check_rope(got, x, positions, theta: float = 10000.0, *, rope_fn=None, hint: str = ROPE_HINT) -> None:
    """``got`` = the learner's ``rope(x, positions, theta)`` against the complex-plane oracle.

    With a half-precision ``x`` and ``rope_fn`` (the learner's rope) given, a wrong answer
    of the right dtype is also tried on a float32 copy of x: right there and wrong in half
    precision means the angles were computed in the half dtype, however the code did it."""
    rtol, atol = rope_tolerance(x, positions)
    name = describe_rope_call(x, positions, theta)
    try:
        assert_close(
            got,
            rope_oracle(x, positions, theta),
            name=name,
            rtol=rtol,
            atol=atol,
            hint=hint,
            suspects=MISCONCEPTIONS.on("rope", x, positions, theta),
        )
    except CheckFailure as failure:
        message = str(failure)
        if rope_fn is None or x.dtype not in HALF_DTYPES or "Likely mistake" in message:
            raise
        if torch.as_tensor(got).dtype != x.dtype:
            raise
        x32 = x.to(torch.float32)
        try:
            check_rope(rope_fn(x32, positions, theta), x32, positions, theta)
        except CheckFailure:
            raise failure from None
        raise MISCONCEPTIONS.failure(
            "angles_in_half_precision",
            f"{message.split(chr(10) + 'Hint:')[0]}\n(the same x in float32 gives the right answer)",
            hint="compute positions * frequencies, cos and sin in float32, rotate, then cast to x.dtype",
        ) from None


# --- the picture: the learner's table and RoPE scores ---------------------------------


def figure(impl) -> Figure:
    """Left: ``impl.sinusoidal_positions(64, 64)``. Middle: the score <rope(q, m), rope(k, n)>
    of ``impl.rope`` for every m, n in 0..47 (constant along each diagonal when only m - n
    counts). Right: the same scores against m - n, at n = 0 and at n = 500."""
    table = torch.as_tensor(impl.sinusoidal_positions(64, 64)).float()
    gen = torch.Generator().manual_seed(5)
    d, span = 64, 48
    q, k = torch.randn(d, generator=gen), torch.randn(d, generator=gen)
    grid_m, grid_n = torch.meshgrid(torch.arange(span), torch.arange(span), indexing="ij")
    scores = pair_scores(impl.rope, q, k, grid_m.flatten(), grid_n.flatten()).reshape(span, span)
    deltas = torch.arange(-40, 41)
    fig, axes = new_figure(13.5, 3.9, ncols=3)

    image = axes[0].imshow(table.numpy(), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    axes[0].set_title("sinusoidal_positions(64, 64)", fontsize=10)
    axes[0].set_xlabel("feature (sin, cos, sin, cos, ...)")
    axes[0].set_ylabel("position p")
    fig.colorbar(image, ax=axes[0], shrink=0.8)

    image = axes[1].imshow(scores.detach().numpy(), cmap="viridis", aspect="auto")
    axes[1].set_title("<rope(q, m), rope(k, n)>", fontsize=10)
    axes[1].set_xlabel("key position n")
    axes[1].set_ylabel("query position m")
    fig.colorbar(image, ax=axes[1], shrink=0.8)

    for n0, style in ((0, "-"), (500, "o")):
        s = pair_scores(impl.rope, q, k, n0 + deltas, torch.full_like(deltas, n0))
        axes[2].plot(deltas.numpy(), s.detach().numpy(), style, markersize=3, label=f"random q, k; n = {n0}")
    axes[2].set_title("the score depends on m - n only", fontsize=10)
    axes[2].set_xlabel("m - n")
    axes[2].legend(fontsize=8)
    caption = (
        "Your sinusoidal table, and your RoPE's query-key scores: constant along diagonals, the same "
        "curve of m - n at n = 0 and n = 500"
    )
    if not math.isfinite(float(scores.abs().max())):
        caption += " (some scores are not finite!)"
    return png(fig), caption
