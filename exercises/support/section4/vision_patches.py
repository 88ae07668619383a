"""Support for exercise 4.1 (images as tokens: ViT patch embedding and the CLIP loss): what its
public tests, graders, notebook and `llmkit show` share. It ships to learners: the oracles
are torch's own ``F.unfold`` and ``nn.Conv2d`` (which the exercise bans or does not ask
for) and the CLIP loss written in numpy float64; the misconceptions' variants are built
from the same pieces, never from the reference solution.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import FLOAT_DTYPES, SEEDS, Draw, Misconception, Misconceptions, assert_close

# --- patches: torch's F.unfold is the oracle ----------------------------------


def unfold_patches(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C * p * p): ``F.unfold`` with stride = kernel = patch, whose
    columns are the patches in row-major order, each flattened as (C, p, p)."""
    return F.unfold(images, kernel_size=patch, stride=patch).transpose(1, 2)


def _unfold_hwc(images: torch.Tensor, patch: int) -> torch.Tensor:
    """The same patches, each flattened as (p, p, C): channels last inside a patch."""
    b, c = images.shape[:2]
    cols = F.unfold(images, kernel_size=patch, stride=patch)  # (B, C*p*p, N)
    n = cols.shape[-1]
    return cols.reshape(b, c, patch, patch, n).permute(0, 4, 2, 3, 1).reshape(b, n, -1)


def _unfold_column_major(images: torch.Tensor, patch: int) -> torch.Tensor:
    """The same patches, numbered down each grid column first (n = j * gh + i)."""
    cols = F.unfold(images, kernel_size=patch, stride=patch)  # (B, D, gh * gw), row-major
    gh, gw = images.shape[-2] // patch, images.shape[-1] // patch
    b, d = cols.shape[:2]
    return cols.reshape(b, d, gh, gw).transpose(-2, -1).reshape(b, d, gh * gw).transpose(1, 2)


patch_sides = st.integers(1, 4)
grid_sides = st.integers(1, 4)


@st.composite
def patchify_case(draw_st, max_batch: int = 3, max_chans: int = 3):
    """(B, C, gh, gw, patch, dtype, seed): images of (B, C, gh * patch, gw * patch)."""
    return (
        draw_st(st.integers(1, max_batch)),
        draw_st(st.integers(1, max_chans)),
        draw_st(grid_sides),
        draw_st(grid_sides),
        draw_st(patch_sides),
        draw_st(FLOAT_DTYPES),
        draw_st(SEEDS),
    )


def patchify_images(case) -> tuple[torch.Tensor, int]:
    b, c, gh, gw, p, dtype, seed = case
    return Draw(seed).tensor(b, c, gh * p, gw * p, dtype=dtype), p


def describe_images(images: torch.Tensor, patch: int) -> str:
    return f"patchify(images {tuple(images.shape)} {images.dtype}, patch={patch})"


# --- the patch embedding: a strided nn.Conv2d is the oracle -------------------


class ConvPatchEmbed(nn.Module):
    """ViT's patch embedding as torch writes it: ``nn.Conv2d(C, dim, p, stride=p)``, its
    (B, dim, gh, gw) output flattened and transposed to (B, N, dim), the class token
    concatenated in front, and the positions added. The exercise's ``PatchEmbed`` holds
    the same numbers (``state_dict_for_learner``)."""

    def __init__(self, img_size: tuple[int, int], patch: int, in_chans: int, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, dim, patch, stride=patch)
        n = (img_size[0] // patch) * (img_size[1] // patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n, dim))

    def patch_tokens(self, images: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """(B, dim, gh, gw): the conv's output (with another weight for a misconception)."""
        return F.conv2d(
            images, self.conv.weight if weight is None else weight, self.conv.bias, stride=self.conv.stride
        )

    def assemble(
        self, grid: torch.Tensor, *, column_major: bool = False, cls_last: bool = False
    ) -> torch.Tensor:
        """(B, dim, gh, gw) -> (B, 1 + N, dim) tokens with the class token and positions."""
        if column_major:
            grid = grid.transpose(-2, -1)
        tokens = grid.flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        parts = [tokens, cls] if cls_last else [cls, tokens]
        return torch.cat(parts, dim=1) + self.pos_embed

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.assemble(self.patch_tokens(images))


@st.composite
def patch_embed_case(draw_st):
    """One ``PatchEmbed`` configuration and call."""
    p = draw_st(patch_sides)
    gh, gw = draw_st(grid_sides), draw_st(grid_sides)
    return dict(
        patch=p,
        img_size=(gh * p, gw * p),
        in_chans=draw_st(st.integers(1, 3)),
        dim=draw_st(st.integers(1, 8)),
        batch=draw_st(st.integers(1, 3)),
        dtype=draw_st(FLOAT_DTYPES),
        seed=draw_st(SEEDS),
    )


def conv_patch_embed(case) -> ConvPatchEmbed:
    """A :class:`ConvPatchEmbed` for ``case`` with seeded random weights (non-zero biases,
    class token and positions, so that each one shows)."""
    h, w = case["img_size"]
    oracle = ConvPatchEmbed((h, w), case["patch"], case["in_chans"], case["dim"]).to(case["dtype"])
    gen = torch.Generator().manual_seed(case["seed"])
    fan_in = case["in_chans"] * case["patch"] ** 2
    with torch.no_grad():
        for name, p in oracle.named_parameters():
            scale = 1 / math.sqrt(fan_in) if name.startswith("conv") else 1.0
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * scale)
    return oracle


def state_dict_for_learner(oracle: ConvPatchEmbed) -> dict[str, torch.Tensor]:
    """The oracle's weights under the exercise's names: the conv kernel (dim, C, p, p)
    read as a linear layer's (dim, C * p * p) weight."""
    dim = oracle.conv.out_channels
    return {
        "proj.weight": oracle.conv.weight.detach().reshape(dim, -1).clone(),
        "proj.bias": oracle.conv.bias.detach().clone(),
        "cls_token": oracle.cls_token.detach().clone(),
        "pos_embed": oracle.pos_embed.detach().clone(),
    }


def learner_named(oracle_grads: dict[str, torch.Tensor], dim: int) -> dict[str, torch.Tensor]:
    """Per-parameter tensors of the oracle (e.g. gradients) under the learner's names."""
    return {
        "proj.weight": oracle_grads["conv.weight"].reshape(dim, -1),
        "proj.bias": oracle_grads["conv.bias"],
        "cls_token": oracle_grads["cls_token"],
        "pos_embed": oracle_grads["pos_embed"],
    }


def make_patch_embed(impl, case):
    """The learner's ``PatchEmbed`` holding the oracle's weights, and the oracle. A square
    image is given as an int, the others as (H, W)."""
    oracle = conv_patch_embed(case)
    h, w = case["img_size"]
    size = h if h == w else (h, w)
    learner = impl.PatchEmbed(size, case["patch"], case["in_chans"], case["dim"]).to(case["dtype"])
    learner.load_state_dict(state_dict_for_learner(oracle))
    return learner, oracle


def embed_images(case) -> torch.Tensor:
    h, w = case["img_size"]
    return Draw(case["seed"] + 1).tensor(case["batch"], case["in_chans"], h, w, dtype=case["dtype"])


def describe_embed(case) -> str:
    size = case["img_size"]
    return (
        f"PatchEmbed(img_size={size[0] if size[0] == size[1] else size}, patch={case['patch']}, "
        f"in_chans={case['in_chans']}, dim={case['dim']}) on {case['batch']} {case['dtype']} image(s)"
    )


def _embed_hwc(oracle: ConvPatchEmbed, images: torch.Tensor) -> torch.Tensor:
    """Patches flattened as (p, p, C) and read by the conv's weights as (C, p, p): the conv
    whose kernel is the linear weight reshaped (dim, p, p, C), channels moved forward."""
    c, p = oracle.conv.in_channels, oracle.conv.kernel_size[0]
    weight = oracle.conv.weight.reshape(oracle.conv.out_channels, p, p, c).permute(0, 3, 1, 2)
    return oracle.assemble(oracle.patch_tokens(images, weight))


# --- the CLIP loss: numpy float64, written out --------------------------------


def _cross_entropy_rows(logits: np.ndarray) -> np.ndarray:
    """-log softmax(logits[i])[i] for each row i (log-sum-exp with the row max taken out)."""
    top = logits.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return log_z - np.diag(logits)


def clip_loss_closed_form(
    image_features,
    text_features,
    logit_scale,
    *,
    normalise: bool = True,
    times_exp: int = 1,
    directions: str = "both",
    combine: float = 0.5,
) -> torch.Tensor:
    """CLIP's loss in numpy float64, returned as a 0-dim tensor of the features' dtype.

    The defaults are the exercise's: rows L2-normalised, similarities times
    exp(logit_scale), the mean of the two cross-entropies (image -> text over the rows of
    the similarity matrix, text -> image over its columns). The keywords give the
    misconceptions: ``times_exp`` exponentiations of the scale (0, 1 or 2),
    ``directions`` "image" for the rows only, ``combine`` 1.0 to add the two directions.
    """
    img = torch.as_tensor(image_features).detach().to(torch.float64).numpy()
    txt = torch.as_tensor(text_features).detach().to(torch.float64).numpy()
    s = float(torch.as_tensor(logit_scale).detach().to(torch.float64))
    if normalise:
        img = img / np.maximum(np.linalg.norm(img, axis=1, keepdims=True), 1e-12)
        txt = txt / np.maximum(np.linalg.norm(txt, axis=1, keepdims=True), 1e-12)
    for _ in range(times_exp):
        s = math.exp(s)
    logits = s * img @ txt.T
    image_to_text = _cross_entropy_rows(logits).mean()
    if directions == "image":
        loss = image_to_text
    else:
        loss = combine * (image_to_text + _cross_entropy_rows(logits.T).mean())
    return torch.tensor(loss, dtype=torch.as_tensor(image_features).dtype)


@st.composite
def clip_case(draw_st, min_batch: int = 2, max_batch: int = 8):
    """(B, D, dtype, logit_scale, seed) for a batch of B (image, text) pairs."""
    return (
        draw_st(st.integers(min_batch, max_batch)),
        draw_st(st.integers(1, 16)),
        draw_st(FLOAT_DTYPES),
        draw_st(st.floats(-2.0, math.log(100.0))),
        draw_st(SEEDS),
    )


def clip_inputs(case) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features whose rows have norms far from 1 (between ~0.1 and ~10), with texts
    correlated to their images, and the 0-dim log-scale tensor."""
    b, d, dtype, logit_scale, seed = case
    rng = Draw(seed)
    img = rng.tensor(b, d, dtype=torch.float64)
    txt = img + rng.tensor(b, d, dtype=torch.float64)
    img = img * torch.exp(rng.tensor(b, 1, dtype=torch.float64))
    txt = txt * torch.exp(rng.tensor(b, 1, dtype=torch.float64))
    return img.to(dtype), txt.to(dtype), torch.tensor(logit_scale, dtype=dtype)


def describe_clip(img: torch.Tensor, txt: torch.Tensor, logit_scale) -> str:
    return (
        f"clip_loss(image_features {tuple(img.shape)} {img.dtype}, text_features {tuple(txt.shape)}, "
        f"logit_scale={float(logit_scale):.4g})"
    )


def clip_tolerance(dtype: torch.dtype, logit_scale) -> dict[str, float]:
    """float32 logits of size exp(logit_scale) carry rounding of about 1e-7 of that size."""
    if dtype == torch.float64:
        return {"rtol": 1e-9, "atol": 1e-9}
    return {"rtol": 1e-5, "atol": 2e-6 * max(1.0, math.exp(float(logit_scale)))}


# --- misconceptions: what each mistake returns, from the oracles above ---------


def _clip_variant(**mistake):
    def variant(image_features, text_features, logit_scale):
        return clip_loss_closed_form(image_features, text_features, logit_scale, **mistake)

    return variant


MISCONCEPTIONS = Misconceptions(
    "exercises/section4/README.md",
    Misconception(
        "patch_flattened_hwc",
        "each patch flattened as (p, p, C)",
        "a patch is flattened channel by channel, (C, p, p), as F.unfold and a Conv2d's weight "
        "(dim, C, p, p) read it: permute the grid axes forward and keep C before the two pixel axes",
        readme="4.1 — Patch order and patch layout",
        variants={
            "patchify": _unfold_hwc,
            "PatchEmbed": _embed_hwc,
        },
    ),
    Misconception(
        "patches_column_major",
        "patches numbered down the columns",
        "patch n sits at grid row n // (W / p), column n % (W / p): row-major, the top strip first, "
        "left to right (the grid axes in the order (gh, gw))",
        readme="4.1 — Patch order and patch layout",
        variants={
            "patchify": _unfold_column_major,
            "PatchEmbed": lambda oracle, images: oracle.assemble(
                oracle.patch_tokens(images), column_major=True
            ),
        },
    ),
    Misconception(
        "cls_token_last",
        "the class token appended after the patches",
        "the class token is token 0, in front of the N patch tokens, and pos_embed[:, 0] is its position",
        readme="4.1 — The class token and the positions",
        variants={
            "PatchEmbed": lambda oracle, images: oracle.assemble(oracle.patch_tokens(images), cls_last=True)
        },
    ),
    Misconception(
        "features_not_normalised",
        "features not L2-normalised",
        "CLIP compares directions: divide each row of both feature matrices by its L2 norm before the "
        "dot products (cosine similarities in [-1, 1], times the scale)",
        readme="4.1 — Cosine similarities",
        variants={"clip_loss": _clip_variant(normalise=False)},
    ),
    Misconception(
        "scale_not_exponentiated",
        "logit_scale used as the scale itself",
        "logit_scale is the log of the scale (open_clip's parameter, log(1/0.07) ~ 2.66): multiply the "
        "similarities by exp(logit_scale)",
        readme="4.1 — The logit scale",
        variants={"clip_loss": _clip_variant(times_exp=0)},
    ),
    Misconception(
        "scale_exponentiated_twice",
        "logit_scale exponentiated twice",
        "exponentiate the log-scale once, exp(logit_scale); a value that is already the scale "
        "(open_clip's ClipLoss argument) is not exponentiated again",
        readme="4.1 — The logit scale",
        variants={"clip_loss": _clip_variant(times_exp=2)},
    ),
    Misconception(
        "one_direction_loss",
        "only the image -> text direction",
        "the loss is symmetric: the mean of the cross-entropy over the rows of the similarity matrix "
        "(each image picks its text) and over its columns (each text picks its image)",
        readme="4.1 — Both directions",
        variants={"clip_loss": _clip_variant(directions="image")},
    ),
    Misconception(
        "directions_summed",
        "the two directions added, not averaged",
        "the loss is (CE(logits, targets) + CE(logits.T, targets)) / 2: the sum is twice CLIP's loss",
        readme="4.1 — Both directions",
        variants={"clip_loss": _clip_variant(combine=1.0)},
    ),
)


def check_one_call(impl, draw) -> None:
    """One small call of the learner's patchify, checked against ``F.unfold``: the generated
    ban test (``test_no_library_shortcuts``) makes it after its static scan, with the banned
    calls trapped, so code that does nothing earns nothing there."""
    images = draw.tensor(2, 3, 8, 12)
    assert_close(
        impl.patchify(images, 4), unfold_patches(images, 4), name="patchify(images (2, 3, 8, 12), 4)"
    )


# --- the figure: the learner's code at work -----------------------------------


def toy_scene(height: int = 32, width: int = 48) -> torch.Tensor:
    """A kit-drawn RGB picture (3, H, W) in [0, 1]: sky, sun, grass and a house, so that a
    patch out of place is easy to spot."""
    y = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
    x = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
    sky = y < 0.6 * height
    red = torch.where(sky, 0.35 + 0.4 * y / height, torch.full_like(y, 0.2))
    green = torch.where(sky, 0.6 + 0.3 * y / height, 0.55 + 0.1 * torch.sin(x / 3))
    blue = torch.where(sky, torch.full_like(y, 0.95), torch.full_like(y, 0.2))
    image = torch.stack([red, green, blue])
    sun = (y - 0.2 * height) ** 2 + (x - 0.8 * width) ** 2 < (0.12 * height) ** 2
    image[:, sun] = torch.tensor([1.0, 0.85, 0.1])[:, None]
    house = (y >= 0.4 * height) & (y < 0.8 * height) & (x >= 0.15 * width) & (x < 0.42 * width)
    image[:, house] = torch.tensor([0.75, 0.15, 0.1])[:, None]
    door = (y >= 0.6 * height) & (y < 0.8 * height) & (x >= 0.25 * width) & (x < 0.32 * width)
    image[:, door] = torch.tensor([0.3, 0.15, 0.05])[:, None]
    return image.clamp(0, 1)


def _patch_image(row: torch.Tensor, chans: int, patch: int) -> np.ndarray:
    """One token (C * p * p,) read back as a (p, p, C) picture under the (C, p, p) convention."""
    return row.reshape(chans, patch, patch).permute(1, 2, 0).clamp(0, 1).numpy()


def figure(impl) -> Figure:
    """The kit's picture cut by ``impl.patchify`` (the tokens laid out in sequence order,
    each read back as (C, p, p)), and ``impl.clip_loss`` against the log-scale for batches
    of pairs from near-identical to unrelated."""
    image, patch = toy_scene(), 8
    chans, height, width = image.shape
    gh, gw = height // patch, width // patch
    tokens = torch.as_tensor(impl.patchify(image[None], patch))[0].detach().to(torch.float32)

    fig, axes = new_figure(13.0, 3.6, ncols=3)
    ax = axes[0]
    ax.imshow(image.permute(1, 2, 0).numpy())
    for k in range(1, gw):
        ax.axvline(k * patch - 0.5, color="white", lw=0.8)
    for k in range(1, gh):
        ax.axhline(k * patch - 0.5, color="white", lw=0.8)
    for n in range(gh * gw):
        i, j = divmod(n, gw)
        ax.text(j * patch + 1, i * patch + 2.5, str(n), color="black", fontsize=7)
    ax.set_title(f"the image, {gh} x {gw} patches of {patch} x {patch}", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])

    # The learner's tokens in sequence order, wrapped over gh rows of gw: a correct patchify
    # rebuilds the picture; a wrong order or layout scrambles it.
    ax = axes[1]
    strip = np.ones((gh * (patch + 1), gw * (patch + 1), chans))
    shown = tokens.shape[0] if tokens.ndim == 2 else 0
    for n in range(min(shown, gh * gw)):
        i, j = divmod(n, gw)
        strip[i * (patch + 1) : i * (patch + 1) + patch, j * (patch + 1) : j * (patch + 1) + patch] = (
            _patch_image(tokens[n], chans, patch)
        )
    ax.imshow(strip)
    ax.set_title(
        f"your patchify: tokens 0..N-1 in order, {gw} a row,\neach read back as (C, p, p)", fontsize=10
    )
    ax.set_xticks([])
    ax.set_yticks([])

    # The learner's clip_loss over a batch of 16 pairs, texts = images + noise.
    ax = axes[2]
    gen = torch.Generator().manual_seed(4)
    batch, d = 16, 32
    images = torch.randn(batch, d, generator=gen, dtype=torch.float64)
    scales = torch.linspace(-1.0, math.log(100.0), 25, dtype=torch.float64)
    pairs = (
        ("texts = images + 0.05 noise", 0.05, "tab:green"),
        ("texts = images + 1.0 noise", 1.0, "tab:blue"),
        ("unrelated texts", None, "tab:orange"),
    )
    for label, noise, colour in pairs:
        noise_draw = torch.randn(batch, d, generator=gen, dtype=torch.float64)
        texts = noise_draw if noise is None else images + noise * noise_draw
        losses = [float(impl.clip_loss(images, texts, s)) for s in scales]
        ax.plot(scales.numpy(), losses, color=colour, label=label)
    ax.axhline(math.log(batch), color="grey", ls="--", lw=1, label=f"log B = {math.log(batch):.2f} (chance)")
    ax.set_ylim(0, 3 * math.log(batch))
    ax.set_xlabel("logit_scale (the scale is its exp)")
    ax.set_ylabel("your clip_loss")
    ax.set_title(f"CLIP loss over a batch of {batch} pairs", fontsize=10)
    ax.legend(fontsize=7)
    return png(fig), (
        "A kit-drawn image cut into 8 x 8 patches, the tokens of your patchify laid out in order "
        "(a correct one rebuilds the picture), and your clip_loss against the log-scale for "
        "near-identical, related and unrelated pairs"
    )
