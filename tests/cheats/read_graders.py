# target: section2/attention.py
"""Reads the hidden graders and the mutants to learn what is checked (and leaks them
through its outputs)."""

import os
import pathlib

import torch

import llmkit

ROOT = pathlib.Path(llmkit.__file__).resolve().parents[2]
LEAKED = []
for path in [ROOT / "graders/section2/test_attention.py", ROOT / "catalog.toml"]:
    try:
        LEAKED.append(path.read_text())
    except OSError as exc:
        LEAKED.append(repr(exc))
for name in os.listdir(ROOT / "graders"):
    LEAKED.append(name)


def softmax(x, dim=-1):
    raise ValueError("\n".join(LEAKED)[:3000])


scaled_dot_product_attention = softmax


class MultiHeadAttention(torch.nn.Module):
    pass
