"""Exercise 4.1 — images as tokens: ViT patch embedding and the CLIP loss (reference solution)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_divisible(height: int, width: int, patch: int) -> None:
    if patch < 1:
        raise ValueError(f"the patch size must be at least 1, got {patch}")
    bad = [f"{name} {size}" for name, size in (("height", height), ("width", width)) if size % patch]
    if bad:
        raise ValueError(f"image {' and '.join(bad)} not divisible by the patch size {patch}")


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    b, c, h, w = images.shape
    _check_divisible(h, w, patch)
    gh, gw = h // patch, w // patch
    # (B, C, gh, p, gw, p): split each spatial axis into (grid index, pixel inside the patch)
    grid = images.reshape(b, c, gh, patch, gw, patch)
    # (B, gh, gw, C, p, p): grid positions first (row-major), then one patch as (C, p, p)
    return grid.permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c * patch * patch)


class PatchEmbed(nn.Module):
    def __init__(self, img_size: int | tuple[int, int], patch: int, in_chans: int, dim: int):
        super().__init__()
        h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        _check_divisible(h, w, patch)
        self.img_size = (h, w)
        self.patch = patch
        self.grid_size = (h // patch, w // patch)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Linear(in_chans * patch * patch, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + self.num_patches, dim) * 0.02)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[-2:]) != self.img_size:
            raise ValueError(
                f"PatchEmbed expects images of size {self.img_size}, got {tuple(images.shape[-2:])}"
            )
        tokens = self.proj(patchify(images, self.patch))  # (B, N, dim)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1) + self.pos_embed


def clip_loss(
    image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
    img = F.normalize(image_features, dim=-1)
    txt = F.normalize(text_features, dim=-1)
    scale = torch.as_tensor(logit_scale, dtype=img.dtype, device=img.device).exp()
    logits = scale * img @ txt.T
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
