"""Public tests for exercise 4.1 (images as tokens: ViT patch embedding and the CLIP loss).
Run: pytest exercises/section4/test_vision_patches.py

They draw image and grid sizes (non-square grids, one patch, 1 x 1 patches, one channel)
and batches of feature pairs at random, a few examples each, and compare with torch's
``F.unfold``, a strided ``nn.Conv2d`` holding your weights, and the CLIP loss written out
in numpy float64. When a check fails it says which known mistake your output looks like.
The hidden graders draw more examples and also check gradients, invariances, inputs left
alone and the ban on unfold.
"""

import pytest
import torch
from hypothesis import given, settings

from llmkit.testing import CheckFailure, assert_close, load_support

pytestmark = pytest.mark.exercise("4.1")
support = load_support("4.1")
mistakes = support.MISCONCEPTIONS


@settings(max_examples=12)
@given(case=support.patchify_case())
def test_patchify_matches_unfold(impl, case):
    images, patch = support.patchify_images(case)
    assert_close(
        impl.patchify(images, patch),
        support.unfold_patches(images, patch),
        name=support.describe_images(images, patch),
        hint="(B, C, H, W) -> (B, gh, gw, C, p, p) -> (B, gh * gw, C * p * p): grid rows, then grid "
        "columns, then one patch channel by channel",
        suspects=mistakes.on("patchify", images, patch),
    )


def test_patchify_names_the_dimension_that_does_not_divide(impl, draw):
    for shape, word in (((1, 3, 10, 8), "height"), ((2, 1, 8, 6), "width")):
        with pytest.raises(ValueError) as raised:
            impl.patchify(draw.tensor(*shape), 4)
        message = str(raised.value).lower()
        other = "width" if word == "height" else "height"
        if word not in message or other in message:
            raise CheckFailure(
                f"patchify(images {shape}, patch=4) should raise a ValueError naming the {word} "
                f"(and not the {other}), got: {raised.value!r}",
                hint=f'e.g. "image {word} {max(shape[2:])} is not divisible by patch 4"',
            )


@settings(max_examples=8)
@given(case=support.patch_embed_case())
def test_patch_embed_matches_a_strided_conv(impl, case):
    learner, oracle = support.make_patch_embed(impl, case)
    images = support.embed_images(case)
    if learner.num_patches != oracle.pos_embed.shape[1] - 1:
        raise CheckFailure(
            f"{support.describe_embed(case)}: num_patches is {learner.num_patches}, "
            f"expected {oracle.pos_embed.shape[1] - 1}",
            hint="num_patches = (H // patch) * (W // patch)",
        )
    with torch.no_grad():
        expected = oracle(images)
    assert_close(
        learner(images),
        expected,
        name=support.describe_embed(case),
        hint="tokens = [cls_token; proj(patchify(images))] + pos_embed, the class token first",
        suspects=mistakes.on("PatchEmbed", oracle, images),
    )


@settings(max_examples=12)
@given(case=support.clip_case())
def test_clip_loss_matches_the_formula(impl, case):
    img, txt, logit_scale = support.clip_inputs(case)
    for scale in (logit_scale, float(logit_scale)):  # a 0-dim tensor or a float
        assert_close(
            impl.clip_loss(img, txt, scale),
            support.clip_loss_closed_form(img, txt, logit_scale),
            name=support.describe_clip(img, txt, logit_scale)
            + (" (logit_scale as a float)" if isinstance(scale, float) else ""),
            hint="normalise the rows, logits = exp(logit_scale) * img @ txt.T, then the mean of the "
            "cross-entropies of the rows and of the columns against targets 0..B-1",
            suspects=mistakes.on("clip_loss", img, txt, logit_scale),
            **support.clip_tolerance(img.dtype, logit_scale),
        )
