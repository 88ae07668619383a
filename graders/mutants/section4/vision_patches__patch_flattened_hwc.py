"""Mutant: each patch flattened as (p, p, C), channels last inside the patch.

Misconception: an image is "height x width x channels" (PIL, numpy, matplotlib), so a
patch is too. torch's tensors are channels-first, and a Conv2d's kernel (dim, C, p, p),
F.unfold and every ViT checkpoint read a patch channel by channel.
"""


def patchify(images, patch):
    b, c, h, w = images.shape
    _check_divisible(h, w, patch)
    gh, gw = h // patch, w // patch
    grid = images.reshape(b, c, gh, patch, gw, patch)
    return grid.permute(0, 2, 4, 3, 5, 1).reshape(b, gh * gw, c * patch * patch)
