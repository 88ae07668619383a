"""Exercise 2.2 — where is each token? Sinusoidal positions and rotary embeddings (RoPE).

Attention compares every query with every key, and that comparison does not care
about order: shuffle the tokens and each one gets the same output, shuffled. The
position has to be put into the vectors. Two ways, both written here:

1. ``sinusoidal_positions(T, d)`` — the table of "Attention Is All You Need" (2017),
   added to the token embeddings before the first layer.
2. ``rope(x, positions)`` — rotary position embeddings (Su et al., 2021; Llama,
   Mistral, Qwen, ...): each query and key is *rotated* by an angle proportional to
   its position, so the score of a query at m with a key at n depends on m - n only.

Replace every ``raise NotImplementedError``, then run

    pytest exercises/section2/test_positions.py      (or: llmkit check 2.2)

Nothing is banned: torch's elementwise functions (sin, cos, pow, cat, ...) are what
you need. No Python loop over positions or features is needed either.
"""

from __future__ import annotations

import torch


def sinusoidal_positions(T: int, d: int, base: float = 10000.0) -> torch.Tensor:
    """The sinusoidal position table of the transformer paper: ``(T, d)``, float32.

    Row p is the encoding of position p (p = 0 .. T-1). Column j belongs to the pair
    i = j // 2, whose frequency is ``base ** (-2i / d)``, and alternates sin and cos:

        PE[p, 2i]     = sin(p * base ** (-2i / d))
        PE[p, 2i + 1] = cos(p * base ** (-2i / d))

    So the columns go sin, cos, sin, cos, ... (interleaved), pair 0 turns once per
    radian of position and the last pair almost not at all. Note the exponent: 2i/d
    with i the *pair* index (equivalently: the even column's index over d), so the
    frequencies run from 1 down to about 1/base.

    * ``T`` >= 0 (T = 0 gives an empty (0, d) table); ``d`` >= 1, odd or even: with
      odd d the last column is a sin whose cos partner falls outside the table.
    * Returns float32. Position p can reach the thousands: compute the angles in
      float64 (or be ready for float32 rounding of about p * 1e-7).
    * Raise ValueError for T < 0 or d < 1.

    Some code (tensor2tensor, several tutorials) lays out the same numbers as
    [all the sins | all the cosines]. That table is just as good for a model trained
    with it, but it is not this one: a model trained with one layout reads the other
    as different positions.
    """
    raise NotImplementedError("exercise 2.2: write sinusoidal_positions()")


def rope(x: torch.Tensor, positions: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding of ``x`` at ``positions``, in the half-split layout.

    Shapes and dtypes:
        x:         (..., T, d), float16, bfloat16, float32 or float64; d must be even
                   (raise ValueError otherwise: RoPE rotates pairs of features).
        positions: a tensor of position numbers, (T,) or batched (..., T); it must
                   broadcast against x.shape[:-1] (right-aligned, as in numpy). For x
                   of shape (B, H, T, d) and one row of positions per batch element,
                   pass positions of shape (B, 1, T). Integer or floating dtype;
                   positions need not be 0..T-1: any values (a KV cache continues at
                   T0, T0 + 1, ...; packed sequences restart at 0; fractional ones
                   stretch the context) and negative ones are fine.
        returns:   same shape and dtype as x. x is not modified.

    The half-split layout (Llama's ``rotate_half``, Hugging Face's default): feature j
    pairs with feature j + d/2, for j = 0 .. d/2 - 1. At position m the pair turns by
    the angle m * w_j, with w_j = theta ** (-2j / d):

        out[j]       = x[j] * cos(m w_j) - x[j + d/2] * sin(m w_j)
        out[j + d/2] = x[j + d/2] * cos(m w_j) + x[j] * sin(m w_j)

    (a counter-clockwise rotation of the point (x[j], x[j + d/2]); the same as
    x * cos + rotate_half(x) * sin with rotate_half(x) = [-x2, x1] and cos, sin
    repeated twice along the features).

    The other layout, *interleaved*, pairs neighbours (2j, 2j + 1): GPT-J, GPT-NeoX's
    option, and Meta's original Llama code, which reads each pair as one complex
    number (torch.view_as_complex) and multiplies it by e^(i m w_j). Both are valid
    RoPE, but they are not interchangeable: the same q/k weights give different
    outputs, and converting a checkpoint from one to the other means permuting the
    rows of its q and k projections. Here: half-split, always.

    Precision: compute the angles m * w_j in float32 (float64 when x is float64),
    even for float16 / bfloat16 inputs: in bfloat16 the position 1001 is 1000, and the
    angles of late positions come out wrong by whole radians. Return x's dtype: a
    float32 cos table times a bfloat16 x silently promotes the result to float32.
    """
    raise NotImplementedError("exercise 2.2: write rope()")
