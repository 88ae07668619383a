"""Exercise 4.1 — images as tokens: ViT patch embedding and the CLIP loss.

A Vision Transformer reads an image the way GPT reads text: as a sequence of
tokens. It cuts the image into a grid of p x p patches, flattens each patch into
a vector and projects it to the model's width; a learned class token and learned
positions complete the sequence. CLIP then trains an image encoder and a text
encoder together with one contrastive loss over a batch of matching pairs.

Replace every ``raise NotImplementedError`` with your implementation, then run

    pytest exercises/section4/test_vision_patches.py      (or: llmkit check 4.1)

Banned here (a static scan and a runtime trap enforce it): ``F.unfold``,
``nn.Unfold`` and ``Tensor.unfold``, which cut patches for you: ``patchify`` is
a ``reshape`` and a ``permute``. Everything else in torch is fine (``nn.Linear``,
``F.normalize``, ``F.cross_entropy``, ``torch.cat``, ...), and so is a strided
``F.conv2d`` if you want to see that it gives the same patch embedding.
"""

from __future__ import annotations

import torch
from torch import nn


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """Cut ``images`` into non-overlapping ``patch`` x ``patch`` squares, one row each.

    images: (B, C, H, W), any float dtype, any memory layout (contiguous or not);
            H and W must both be multiples of ``patch``.
    returns (B, N, C * patch * patch) in the images' dtype, N = (H / patch) * (W / patch).

    Two conventions fix which number goes where (they are ``F.unfold``'s and a
    ViT's, so that a ``Conv2d(C, dim, patch, stride=patch)`` and your patches meet):

    * patch order is **row-major** over the grid: patch n covers grid row
      n // (W / patch) and grid column n % (W / patch); the first W / patch
      patches are the top strip of the image, left to right.
    * each patch is flattened as **(C, patch, patch)**: all of channel 0 (row by
      row), then all of channel 1, ... Feature ``c * patch * patch + i * patch + j``
      of a patch is channel c, pixel row i, pixel column j inside it.

    If H (or W) is not a multiple of ``patch``, raise ``ValueError`` with a
    message naming the dimension at fault: it contains the word "height" (or
    "width"), and not the other one unless both are at fault.

    Gradients flow back to ``images``; ``images`` itself is not modified.
    """
    raise NotImplementedError


class PatchEmbed(nn.Module):
    """The tokens a ViT feeds its first block: [class token; patch embeddings] + positions.

    ``PatchEmbed(img_size, patch, in_chans, dim)``:
        img_size: int (a square image) or a (H, W) tuple; both must be multiples of
                  ``patch``, else ``ValueError``.
        patch:    the patch side p; in_chans: C; dim: the width of each token.

    Attributes (names and shapes matter: the tests load weights into them):
        grid_size:   (H // p, W // p), a tuple of two ints
        num_patches: N = (H // p) * (W // p), an int
        proj:        ``nn.Linear(in_chans * p * p, dim)`` (with a bias), applied to your
                     ``patchify`` output. Its weight row k reads feature k of a patch
                     flattened as (C, p, p), so it holds exactly the weights of a
                     ``nn.Conv2d(in_chans, dim, p, stride=p)`` reshaped to (dim, C * p * p).
        cls_token:   ``nn.Parameter`` of shape (1, 1, dim)
        pos_embed:   ``nn.Parameter`` of shape (1, 1 + N, dim): row 0 is the class
                     token's position, row 1 + n patch n's (row-major, as ``patchify``).
        Initialise cls_token and pos_embed with small random values (normal, std 0.02,
        as ViT does); all parameters are trainable.

    ``forward(images)``: images (B, C, H, W) with (H, W) == img_size, else ``ValueError``.
        returns (B, 1 + N, dim): token 0 is the class token, tokens 1..N the projected
        patches in ``patchify``'s order, and ``pos_embed`` is added to all 1 + N of them.
    """

    def __init__(self, img_size: int | tuple[int, int], patch: int, in_chans: int, dim: int):
        super().__init__()
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def clip_loss(
    image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
    """CLIP's symmetric contrastive loss over a batch of B matching (image, text) pairs.

    image_features, text_features: (B, D), the same float dtype; row i of each is pair i.
    logit_scale: a 0-dim tensor (or a float) holding the **log** of the scale:
        the value CLIP stores in its learnable parameter (initialised to log(1 / 0.07)
        ~ 2.659, a temperature of 0.07). Exponentiate it here: the similarities are
        multiplied by exp(logit_scale). This is the parameter as open_clip's model
        stores it; open_clip's own ``ClipLoss`` takes the scale already exponentiated
        (its model hands it ``logit_scale.exp()``), here you get the raw parameter.
        No clamping here (training clamps the parameter at log(100) after each step).
    returns a 0-dim tensor of the features' dtype:

        img = image_features / ||image_features||  (each row, L2; F.normalize's eps is fine)
        txt = text_features / ||text_features||
        logits = exp(logit_scale) * img @ txt.T           (B, B): logits[i, j] = image i vs text j
        loss = ( CE(logits, targets) + CE(logits.T, targets) ) / 2,   targets = [0, 1, ..., B - 1]

    with CE the mean cross-entropy over the B rows: each image must pick its own text
    among the B texts of the batch, and each text its own image. Gradients flow to both
    feature tensors and to ``logit_scale`` (when it is a tensor that requires grad);
    the inputs are not modified.
    """
    raise NotImplementedError
