"""``llmkit show ID``: a picture of the learner's own implementation at work.

Each exercise's support module defines ``figure(impl) -> (png bytes, caption)``, which
calls the functions of ``impl`` (the learner's module, or the reference when the
notebook is built) and draws what they compute. This module loads the learner's
module, draws, and says where the PNG went; a stub that still raises
NotImplementedError is "not started", not an error.
"""

from __future__ import annotations

import traceback
import types
from dataclasses import dataclass
from pathlib import Path

from llmkit.catalog import Catalog, Exercise
from llmkit.compute import configure_compute
from llmkit.impl import ImplementationError, resolve_root


@dataclass(frozen=True)
class Shown:
    """What :func:`draw` did: ``status`` is "drawn", "not started" or "error"."""

    status: str
    message: str
    path: Path | None = None


def draw(catalog: Catalog, exercise: Exercise, impl: str | None, out_dir: Path) -> Shown:
    """Draw ``exercise``'s figure with the module from ``impl`` (default: exercises/) into
    ``out_dir/<id>.png``."""
    from llmkit.support import SupportError, load_support

    configure_compute()
    try:
        module = resolve_root(impl, catalog.root).load(exercise)
    except ImplementationError as exc:
        return Shown("error", str(exc))
    try:
        support = load_support(exercise, catalog.root)
    except SupportError as exc:
        return Shown("error", str(exc))
    return draw_module(support, module, exercise, out_dir)


def draw_module(
    support: types.ModuleType, module: types.ModuleType, exercise: Exercise, out_dir: Path
) -> Shown:
    """Draw with an already loaded learner ``module`` (the notebook has one)."""
    figure = getattr(support, "figure", None)
    if not callable(figure):
        return Shown("error", f"{exercise.support} defines no figure(impl)")
    try:
        png, caption = figure(module)
    except NotImplementedError:
        return Shown(
            "not started", f"{exercise.id} is not started: {exercise.module} still raises NotImplementedError"
        )
    except Exception as exc:  # noqa: BLE001 - the learner's code failed while drawing
        where = _learner_frame(exc, module)
        return Shown(
            "error", f"your code raised {type(exc).__name__}: {exc}{where} while drawing {exercise.id}"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{exercise.id}.png"
    path.write_bytes(png)
    return Shown("drawn", caption, path)


def _learner_frame(exc: BaseException, module: types.ModuleType) -> str:
    """`` (file, line N)`` of the innermost frame in the learner's module, if any."""
    files = {getattr(module, "__file__", None)} - {None}
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in files]
    return f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})" if frames else ""
