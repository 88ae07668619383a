"""Seeded random inputs for tests: reproducible from the run's seed, never constant."""

from __future__ import annotations

import zlib

import numpy as np
import torch


def seed_for_test(run_seed: int, test_id: str) -> int:
    """A per-test seed derived from the run's seed, stable across processes."""
    return (run_seed * 1_000_003 + zlib.crc32(test_id.encode())) % (2**31)


class Draw:
    """Random inputs for one test; each call continues the same stream."""

    def __init__(self, seed: int):
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)

    def tensor(self, *shape: int, dtype: torch.dtype = torch.float32, scale: float = 1.0):
        """Standard normal values times ``scale`` (drawn in float64, then cast)."""
        values = torch.randn(shape, generator=self.generator, dtype=torch.float64) * scale
        return values.to(dtype)

    def bool_mask(self, *shape: int, p_true: float = 0.7) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator) < p_true

    def integers(self, low: int, high: int, size=None):
        """Integers in [low, high)."""
        return self.rng.integers(low, high, size=size)
