"""Shared set-up for the scripts in benchmarks/: the common options and the module to time."""

from __future__ import annotations

import argparse
import platform
import types

from llmkit.catalog import load_catalog
from llmkit.impl import resolve_root


def benchmark_parser(doc: str, *, repeats: int, threads: int | None = None) -> argparse.ArgumentParser:
    """``--impl`` (default: solutions), ``--repeats`` and, unless ``threads`` is 0, ``--threads``
    (default: torch's current count, or ``threads``)."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--impl", default="solutions", help="exercises, solutions, a directory or a mutant")
    parser.add_argument("--repeats", type=int, default=repeats, help="interleaved repeats per case")
    if threads != 0:
        import torch

        default = torch.get_num_threads() if threads is None else threads
        parser.add_argument("--threads", type=int, default=default, help="torch threads")
    return parser


def load_benchmarked(args: argparse.Namespace, exercise_id: str) -> types.ModuleType:
    """Apply ``--threads`` and load the exercise's module from ``--impl``."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    catalog = load_catalog()
    return resolve_root(args.impl, catalog.root).load(catalog.get(exercise_id))


def header(name: str, args: argparse.Namespace, **details) -> str:
    """The first line every benchmark prints: what ran, where, and with which settings."""
    import torch

    parts = [f"impl={args.impl}", f"torch {torch.__version__}"]
    if getattr(args, "threads", None):
        parts.append(f"{args.threads} threads")
    parts += [platform.machine(), *(f"{k}={v}" for k, v in details.items()), f"repeats={args.repeats}"]
    return f"# {name} benchmark: " + ", ".join(parts)
