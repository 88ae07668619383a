"""Mutant: patches numbered down each grid column first (the grid axes swapped).

Misconception: any order of the patches will do, the positions are learned anyway.
The order is a convention shared with the checkpoint's position table and with
F.unfold and Conv2d's flatten(2): row-major, the top strip first, left to right.
"""


def patchify(images, patch):
    b, c, h, w = images.shape
    _check_divisible(h, w, patch)
    gh, gw = h // patch, w // patch
    grid = images.reshape(b, c, gh, patch, gw, patch)
    return grid.permute(0, 4, 2, 1, 3, 5).reshape(b, gh * gw, c * patch * patch)
