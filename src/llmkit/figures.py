"""Drawing helpers for the exercises' pictures, each drawn by its support module's ``figure()``.

A figure is computed from torch built-ins, library oracles or plain arithmetic, never
from the reference solution, and returned as (PNG bytes, caption); the nbgrader build
embeds it in the exercise's notebook as an attachment. Matplotlib's object API is used
directly, so drawing changes no global plotting state.
"""

from __future__ import annotations

import io

Figure = tuple[bytes, str]  # (PNG bytes, alt text / caption)
DPI = 90


def new_figure(width: float, height: float, ncols: int = 1):
    """A matplotlib figure of ``width`` x ``height`` inches and its ``ncols`` axes (one row)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols)
    return fig, axes


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()
