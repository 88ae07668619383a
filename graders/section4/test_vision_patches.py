"""Hidden graders for exercise 4.1 (images as tokens: ViT patch embedding and the CLIP loss): 20 points.

Oracles: torch's ``F.unfold`` and ``F.fold`` for the patches, a strided ``nn.Conv2d``
holding the learner's weights for the patch embedding (exercises/support/section4/
vision_patches.py), and, for the CLIP loss, ``F.cross_entropy`` in both directions in
float64 with autograd (below), besides the support module's numpy closed form. Never the
reference solution. Shapes come from hypothesis, values from seeded generators; the
run's seed is printed and replayable with --seed. The 20th point is the generated
``test_no_library_shortcuts`` (unfold is banned).
"""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from llmkit.testing import (
    SEEDS,
    CheckFailure,
    Draw,
    assert_close,
    assert_finite,
    check_equal,
    load_support,
    unchanged,
    value_and_grad,
)

pytestmark = pytest.mark.exercise("4.1")
support = load_support("4.1")
mistakes = support.MISCONCEPTIONS


def clip_loss_torch(image_features, text_features, logit_scale):
    """CLIP's loss as open_clip computes it, from the raw log-scale, in float64 (differentiable)."""
    img = F.normalize(image_features.to(torch.float64), dim=-1)
    txt = F.normalize(text_features.to(torch.float64), dim=-1)
    logits = torch.as_tensor(logit_scale, dtype=torch.float64).exp() * img @ txt.T
    targets = torch.arange(logits.shape[0])
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def check_clip(got, img, txt, logit_scale, what=""):
    assert_close(
        got,
        clip_loss_torch(img, txt, logit_scale).to(img.dtype),
        name=support.describe_clip(img, txt, logit_scale) + what,
        hint="normalise each row, logits = exp(logit_scale) * img @ txt.T, loss = the mean of "
        "CE(logits, targets) and CE(logits.T, targets) with targets 0..B-1",
        suspects=mistakes.on("clip_loss", img, txt, logit_scale),
        **support.clip_tolerance(img.dtype, logit_scale),
    )


# --- patchify (5 points) -----------------------------------------------------


@pytest.mark.points(2)
@settings(max_examples=40)
@given(case=support.patchify_case(max_batch=4, max_chans=4))
def test_patchify_matches_unfold(impl, case):
    images, patch = support.patchify_images(case)
    with unchanged(images, names=["images"]):
        out = impl.patchify(images, patch)
    assert_close(
        out,
        support.unfold_patches(images, patch),
        name=support.describe_images(images, patch),
        hint="row-major patch order (grid rows, then grid columns), each patch flattened as (C, p, p)",
        suspects=mistakes.on("patchify", images, patch),
    )


@pytest.mark.points(1)
def test_patchify_edge_cases_and_layouts(impl, draw):
    cases = []
    whole = draw.tensor(2, 3, 5, 5)
    cases.append(("one patch covers the image", whole, 5))
    pixels = draw.tensor(2, 3, 3, 4)
    cases.append(("1 x 1 patches: one token per pixel", pixels, 1))
    base = draw.tensor(2, 3, 8, 12)
    cases.append(("channels_last images", base.contiguous(memory_format=torch.channels_last), 4))
    cases.append(("a strided view (every other column)", draw.tensor(1, 2, 6, 12)[..., ::2], 3))
    cases.append(("a transposed view (H and W swapped)", draw.tensor(2, 3, 8, 4).transpose(-2, -1), 4))
    for dtype in (torch.float16, torch.bfloat16):
        cases.append((f"{dtype} images", draw.tensor(2, 3, 4, 8, dtype=dtype), 2))
    for what, images, patch in cases:
        # patchify only moves numbers: the result is exact, in the images' dtype.
        assert_close(
            impl.patchify(images, patch),
            support.unfold_patches(images, patch),
            name=f"{support.describe_images(images, patch)}: {what}",
            rtol=0,
            atol=0,
            hint="reshape (not view) works on any memory layout; keep the images' dtype",
            suspects=mistakes.on("patchify", images, patch),
        )


@pytest.mark.points(1)
def test_patchify_raises_naming_the_dimension(impl, draw):
    for shape, patch, words in (
        ((1, 3, 10, 8), 4, ("height",)),
        ((2, 1, 8, 6), 4, ("width",)),
        ((1, 2, 7, 9), 3, ("height",)),
        ((1, 2, 9, 7), 3, ("width",)),
        ((1, 1, 5, 7), 2, ("height", "width")),  # both at fault: either may be named
    ):
        try:
            impl.patchify(draw.tensor(*shape), patch)
        except ValueError as error:
            message = str(error).lower()
            named = [w for w in ("height", "width") if w in message]
            if not named or any(w not in words for w in named):
                raise CheckFailure(
                    f"patchify(images {shape}, patch={patch}) raised ValueError({str(error)!r}), which "
                    f"should name the {' or the '.join(words)}",
                    hint='say which dimension does not divide, e.g. "height 10 is not a multiple of patch 4"',
                ) from None
        else:
            raise CheckFailure(
                f"patchify(images {shape}, patch={patch}) returned instead of raising ValueError",
                hint="check H % patch and W % patch before reshaping",
            )


@pytest.mark.points(1)
@settings(max_examples=8)
@given(case=support.patchify_case())
def test_patchify_gradient_is_fold(impl, case):
    b, c, gh, gw, p, _, seed = case
    images, _ = support.patchify_images((b, c, gh, gw, p, torch.float64, seed))
    weights = Draw(seed + 1).tensor(b, gh * gw, c * p * p, dtype=torch.float64)
    grad = value_and_grad(impl.patchify, [images, p], weights).inputs[0]
    # Each pixel sits in exactly one patch: the gradient puts each weight back where it came from.
    expected = F.fold(weights.transpose(1, 2), (gh * p, gw * p), kernel_size=p, stride=p)
    assert_close(
        grad,
        expected,
        name=f"gradient of {support.describe_images(images, p)}",
        hint="keep it in torch ops on the images (no .detach(), .numpy() or new tensors filled by hand)",
    )


# --- PatchEmbed (6 points) ---------------------------------------------------


@pytest.mark.points(1)
def test_patch_embed_structure_and_errors(impl, draw):
    for img_size, (h, w), patch, chans, dim in ((8, (8, 8), 4, 3, 6), ((6, 9), (6, 9), 3, 2, 5)):
        layer = impl.PatchEmbed(img_size, patch, chans, dim)
        n = (h // patch) * (w // patch)
        shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
        expected = {
            "proj.weight": (dim, chans * patch * patch),
            "proj.bias": (dim,),
            "cls_token": (1, 1, dim),
            "pos_embed": (1, 1 + n, dim),
        }
        check_equal(
            shapes,
            expected,
            name=f"PatchEmbed({img_size}, {patch}, {chans}, {dim}).state_dict() shapes",
            hint="proj = nn.Linear(C * p * p, dim); cls_token (1, 1, dim) and pos_embed (1, 1 + N, dim) "
            "as nn.Parameter",
        )
        check_equal(layer.num_patches, n, name=f"PatchEmbed({img_size}, {patch}, ...).num_patches")
        check_equal(
            tuple(layer.grid_size),
            (h // patch, w // patch),
            name=f"PatchEmbed({img_size}, {patch}, ...).grid_size",
        )
        out = layer(draw.tensor(2, chans, h, w))
        check_equal(
            tuple(torch.as_tensor(out).shape), (2, 1 + n, dim), name="shape of the output for 2 images"
        )
        with pytest.raises(ValueError):
            layer(draw.tensor(2, chans, h + patch, w))  # another size than img_size
    for img_size in (10, (8, 10), (10, 8)):
        with pytest.raises(ValueError):
            impl.PatchEmbed(img_size, 4, 3, 8)


@pytest.mark.points(3)
@settings(max_examples=30)
@given(case=support.patch_embed_case())
def test_patch_embed_matches_a_strided_conv(impl, case):
    learner, oracle = support.make_patch_embed(impl, case)
    images = support.embed_images(case)
    with torch.no_grad():
        expected = oracle(images)
    with unchanged(images, names=["images"]):
        got = learner(images)
    assert_close(
        got,
        expected,
        name=support.describe_embed(case),
        hint="[cls_token; proj(patchify(images))] + pos_embed, class token first, patches in "
        "patchify's row-major order",
        suspects=mistakes.on("PatchEmbed", oracle, images),
    )


@pytest.mark.points(2)
@settings(max_examples=8)
@given(case=support.patch_embed_case())
def test_patch_embed_gradients(impl, case):
    case = {**case, "dtype": torch.float64}
    learner, oracle = support.make_patch_embed(impl, case)
    images = support.embed_images(case)
    n = oracle.pos_embed.shape[1]
    weights = Draw(case["seed"] + 2).tensor(case["batch"], n, case["dim"], dtype=torch.float64)
    got, (got_images,), got_params = value_and_grad(learner, [images], weights)
    want, (want_images,), want_params = value_and_grad(oracle, [images], weights)
    assert_close(got, want, name=support.describe_embed(case))
    assert_close(got_images, want_images, name=f"gradient w.r.t. the images, {support.describe_embed(case)}")
    for name, want_grad in support.learner_named(want_params, case["dim"]).items():
        if name not in got_params:
            raise CheckFailure(
                f"{support.describe_embed(case)}: {name} gets no gradient (trainable parameters: "
                f"{sorted(got_params)})",
                hint="cls_token and pos_embed are nn.Parameter, registered on the module and trainable",
            )
        assert_close(got_params[name], want_grad, name=f"gradient w.r.t. {name}")


# --- clip_loss (8 points) ----------------------------------------------------


@pytest.mark.points(3)
@settings(max_examples=40)
@given(case=support.clip_case(min_batch=1, max_batch=12), as_float=st.booleans())
def test_clip_loss_matches_cross_entropy(impl, case, as_float):
    img, txt, logit_scale = support.clip_inputs(case)
    scale = float(logit_scale) if as_float else logit_scale
    with unchanged(img, txt, logit_scale, names=["image_features", "text_features", "logit_scale"]):
        got = impl.clip_loss(img, txt, scale)
    check_clip(got, img, txt, logit_scale, " (logit_scale as a float)" if as_float else "")


@pytest.mark.points(1)
@settings(max_examples=10)
@given(case=support.clip_case(min_batch=3), perm_seed=SEEDS)
def test_clip_loss_permutations_and_symmetry(impl, case, perm_seed):
    img, txt, logit_scale = support.clip_inputs(case)
    loss = impl.clip_loss(img, txt, logit_scale)
    check_clip(loss, img, txt, logit_scale)
    perm = torch.randperm(img.shape[0], generator=torch.Generator().manual_seed(perm_seed))
    tol = support.clip_tolerance(img.dtype, logit_scale)
    assert_close(
        impl.clip_loss(img[perm], txt[perm], logit_scale),
        loss,
        name=f"{support.describe_clip(img, txt, logit_scale)} with the pairs reordered {perm.tolist()}",
        hint="reordering the pairs together changes nothing: the targets are the diagonal",
        **tol,
    )
    assert_close(
        impl.clip_loss(txt, img, logit_scale),
        loss,
        name=f"{support.describe_clip(img, txt, logit_scale)} with images and texts swapped",
        hint="the loss is symmetric: both directions, averaged",
        suspects=mistakes.on("clip_loss", img, txt, logit_scale),
        **tol,
    )


@pytest.mark.points(2)
@settings(max_examples=8)
@given(case=support.clip_case(max_batch=6))
def test_clip_loss_gradients_reach_logit_scale(impl, case):
    b, d, _, s, seed = case
    img, txt, logit_scale = support.clip_inputs((b, d, torch.float64, s, seed))
    one = torch.tensor(1.0, dtype=torch.float64)
    got, got_grads, _ = value_and_grad(impl.clip_loss, [img, txt, logit_scale], one)
    want, want_grads, _ = value_and_grad(clip_loss_torch, [img, txt, logit_scale], one)
    check_clip(got, img, txt, logit_scale)
    for name, g, w in zip(("image_features", "text_features", "logit_scale"), got_grads, want_grads):
        assert_close(
            g,
            w,
            name=f"gradient w.r.t. {name}, {support.describe_clip(img, txt, logit_scale)}",
            hint="exponentiate the tensor itself (logit_scale.exp(), not math.exp(float(...)) or "
            "torch.tensor(...)): the scale is learned, its gradient must flow",
        )


@pytest.mark.points(1)
def test_clip_loss_at_the_extremes_of_the_scale(impl, draw):
    b, d = 8, 32
    images = draw.tensor(b, d, dtype=torch.float64)
    texts = images + 1e-3 * draw.tensor(b, d, dtype=torch.float64)
    big = torch.tensor(math.log(100.0), dtype=torch.float64)
    loss = impl.clip_loss(images, texts, big)
    if not 0.0 <= float(loss) < 1e-3:
        check_clip(loss, images, texts, big, " (near-identical pairs)")  # names a known mistake
        raise CheckFailure(
            f"near-identical pairs (texts = images + 1e-3 noise, B={b}, D={d}) at logit_scale = log(100) "
            f"(scale 100): the loss is {float(loss):.6g}, should be in [0, 1e-3)",
            hint="at a large scale each matching pair wins its softmax by far: CE near 0 both ways",
        )
    tiny = torch.tensor(-30.0, dtype=torch.float64)
    check_clip(
        impl.clip_loss(images, texts, tiny), images, texts, tiny, " (scale ~ 1e-13: every guess is log B)"
    )
    for dtype in (torch.float32, torch.float64):
        out = torch.as_tensor(impl.clip_loss(images.to(dtype), texts.to(dtype), big.to(dtype)))
        assert_finite(out, name=f"clip_loss at scale 100, {dtype}")
        if out.shape != () or out.dtype != dtype:
            raise CheckFailure(
                f"clip_loss of {dtype} features returned shape {tuple(out.shape)} {out.dtype}, "
                f"expected a 0-dim {dtype} tensor",
                hint="the mean of the two cross-entropies is a 0-dim tensor; keep the features' dtype",
            )


@pytest.mark.points(1)
@settings(max_examples=8)
@given(case=support.clip_case(), seed=SEEDS)
def test_clip_loss_depends_on_directions_only(impl, case, seed):
    img, txt, logit_scale = support.clip_inputs(case)
    rng = Draw(seed)
    rescaled_img = img * torch.exp(2 * rng.tensor(img.shape[0], 1)).to(img.dtype)
    rescaled_txt = txt * torch.exp(2 * rng.tensor(txt.shape[0], 1)).to(txt.dtype)
    check_clip(
        impl.clip_loss(rescaled_img, rescaled_txt, logit_scale),
        rescaled_img,
        rescaled_txt,
        logit_scale,
        " (rows rescaled by positive factors: the loss of the original features)",
    )
