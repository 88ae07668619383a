"""The one import for authors of public tests and hidden graders.

::

    from llmkit.testing import SEEDS, Draw, assert_close, assert_speed, describe_case, load_support

Everything an exercise's tests need from the engine is here, re-exported from the module
that owns it (the same objects, so ``llmkit.testing.CheckFailure is
llmkit.failures.CheckFailure``):

* checks — :func:`assert_close`, :func:`check_equal`, :func:`assert_finite`, :func:`check_gradients`,
  :func:`unchanged`, :func:`value_and_grad`, :func:`attributes`, :func:`as_plain_tensor`,
  :func:`poisoned_allocations`, :func:`assert_all_written` and :class:`CheckFailure`;
* inputs and support — :class:`Draw`, :func:`load_support`, :func:`load_oracle`, and
  the named mistakes a failed check diagnoses: :class:`Misconceptions`
  (:mod:`llmkit.misconceptions`), passed to a check as ``suspects=``;
* speed and memory — :func:`compare_speed`, :func:`peak_memory_of_call`,
  :func:`measure_memory` (advisory, for public tests), :func:`format_bytes`;
* bans — :func:`assert_no_banned_mentions` (the plugin also generates each banned
  exercise's ``test_no_library_shortcuts``: :mod:`llmkit.plugin.bans`);
* the learner's code in the grader's hands — :func:`pipelined` (many operations on a
  sandboxed object, few round trips) and :func:`run_in_fresh_process` (a script of the
  grader's, with the learner's module, in a process of its own measured by the OS).

and the pieces graders share rather than copy: hypothesis strategies (:data:`SEEDS`,
:data:`FLOAT_DTYPES`, :func:`batch_shapes`, :func:`optional_floats`,
:func:`multihead_cases`), :func:`describe_case` for failure messages, and
:func:`assert_speed` / :func:`assert_speed_ratio` for speed limits. A strategy only one
exercise needs stays beside that exercise (its grader or its support module).

Graders import nothing from :mod:`llmkit.sandbox` directly; the author check says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from hypothesis import strategies as st

from llmkit.bans import assert_no_banned_mentions
from llmkit.checks import (
    TOLERANCES,
    Gradients,
    as_plain_tensor,
    assert_all_written,
    assert_close,
    assert_finite,
    attributes,
    central_difference,
    check_equal,
    check_gradients,
    poisoned_allocations,
    tolerance_for,
    unchanged,
    value_and_grad,
)
from llmkit.draw import Draw
from llmkit.failures import BannedCallError, CheckFailure
from llmkit.memory import CallMemory, MemoryUse, format_bytes, measure_memory, peak_memory_of_call
from llmkit.misconceptions import Misconception, Misconceptions
from llmkit.sandbox import pipelined
from llmkit.sandbox.script import ScriptRun, run_learner_script
from llmkit.support import load_oracle, load_support
from llmkit.timing import Inputs, SpeedComparison, compare_speed, same_answer

__all__ = [
    # checks
    "TOLERANCES",
    "BannedCallError",
    "CheckFailure",
    "Gradients",
    "as_plain_tensor",
    "assert_all_written",
    "assert_close",
    "assert_finite",
    "attributes",
    "central_difference",
    "check_equal",
    "check_gradients",
    "poisoned_allocations",
    "tolerance_for",
    "unchanged",
    "value_and_grad",
    # inputs and support modules, named misconceptions
    "Draw",
    "Misconception",
    "Misconceptions",
    "load_oracle",
    "load_support",
    # speed, memory, bans
    "CallMemory",
    "Inputs",
    "MemoryUse",
    "SpeedComparison",
    "assert_no_banned_mentions",
    "assert_speed",
    "assert_speed_ratio",
    "compare_speed",
    "format_bytes",
    "measure_memory",
    "peak_memory_of_call",
    "same_answer",
    # the learner's code in the grader's hands
    "ScriptRun",
    "pipelined",
    "run_in_fresh_process",
    # shared strategies and messages
    "FLOAT_DTYPES",
    "SEEDS",
    "batch_shapes",
    "describe_case",
    "multihead_cases",
    "optional_floats",
]


# --- hypothesis strategies -----------------------------------------------------

SEEDS = st.integers(0, 2**31 - 1)
"""A value seed: draw values with ``Draw(seed)``, shapes with hypothesis."""

FLOAT_DTYPES = st.sampled_from([torch.float32, torch.float64])
"""The dtypes every CPU exercise supports; each has its tolerance (:data:`TOLERANCES`)."""


def batch_shapes(max_dims: int = 3, max_size: int = 3) -> st.SearchStrategy[tuple[int, ...]]:
    """Leading batch dimensions: a tuple of 0 to ``max_dims`` sizes in 1..``max_size``
    (the empty tuple included: no batch at all)."""
    return st.lists(st.integers(1, max_size), min_size=0, max_size=max_dims).map(tuple)


def optional_floats(low: float, high: float) -> st.SearchStrategy[float | None]:
    """None (the default the function picks) or a float in [low, high]."""
    return st.one_of(st.none(), st.floats(low, high))


@st.composite
def multihead_cases(
    draw_st,
    *,
    max_batch: int = 2,
    max_heads: int = 3,
    max_n: int = 70,
    head_dims: Sequence[int] | st.SearchStrategy[int] = range(1, 17),
    sm_scales: tuple[float, float] = (0.05, 2.0),
):
    """``((B, H, N, D), causal, sm_scale, seed)``: one call of a function over
    (batch, heads, sequence, head dim) tensors with a causal flag and a score scale.

    B in 1..``max_batch``, H in 1..``max_heads``, N in 1..``max_n``; D drawn from
    ``head_dims`` (a strategy, or the sizes to choose among); ``sm_scale`` None or in
    ``sm_scales``; ``seed`` for the values (:data:`SEEDS`).
    """
    dims = head_dims if isinstance(head_dims, st.SearchStrategy) else st.sampled_from(list(head_dims))
    shape = (
        draw_st(st.integers(1, max_batch)),
        draw_st(st.integers(1, max_heads)),
        draw_st(st.integers(1, max_n)),
        draw_st(dims),
    )
    return shape, draw_st(st.booleans()), draw_st(optional_floats(*sm_scales)), draw_st(SEEDS)


# --- failure messages ------------------------------------------------------------


def _short(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}, {_short(value.dtype)}"
    if isinstance(value, (torch.Size, list)):
        return str(tuple(value))
    return repr(value)


def describe_case(name: str = "", /, *args: Any, **fields: Any) -> str:
    """A test case as a failure message names it: ``name(arg, ..., key=value, ...)``, or
    without a ``name`` the bare ``arg, ..., key=value, ...``.

    Strings among ``args`` stand as written; dtypes print short (``float32``), tensors as
    their shape and dtype, sizes as tuples, anything else as its ``repr``::

        describe_case("LoRALinear", in_features=3, r=2, dtype=torch.float32)
        # 'LoRALinear(in_features=3, r=2, dtype=float32)'
        describe_case("", f"(B, H, N, D)={shape}", causal=True, sm_scale=None)
        # '(B, H, N, D)=(1, 2, 5, 8), causal=True, sm_scale=None'
    """
    parts = [_short(a) for a in args] + [f"{key}={_short(value)}" for key, value in fields.items()]
    listed = ", ".join(parts)
    return f"{name}({listed})" if name else listed


# --- speed -----------------------------------------------------------------------


def assert_speed_ratio(
    ratio: float,
    *,
    limit: float,
    what: str,
    hint: str,
    measured: str | None = None,
    baseline_name: str = "the baseline",
    record_metric: Callable[[str, float], None] | None = None,
) -> None:
    """Grade a speed ratio (learner time / baseline time) measured in this run: record it
    as the test's ``speed_ratio`` metric when ``record_metric`` (the fixture) is given,
    and fail when it is over ``limit``, with ``what`` was timed, ``measured`` (how it was
    measured; default: the ratio), the limit and the ``hint``."""
    if record_metric is not None:
        record_metric("speed_ratio", ratio)
    if not ratio <= limit:  # NaN fails too
        took = measured or f"{ratio:.2f}x {baseline_name}'s time"
        raise CheckFailure(
            f"too slow: {what} took {took}; the limit is {limit}x {baseline_name}'s time", hint=hint
        )


def assert_speed(
    candidate: Callable[..., Any],
    baseline: Callable[..., Any],
    make_inputs: Callable[[int], tuple | Inputs],
    *,
    limit: float,
    what: str,
    hint: str,
    baseline_name: str = "the baseline",
    record_metric: Callable[[str, float], None] | None = None,
    check: Callable[[Any, Any], None] | None = same_answer,
    repeats: int = 7,
    warmup: int = 1,
    number: int | None = None,
) -> SpeedComparison:
    """Time ``candidate`` (the learner's callable itself, a remote handle when sandboxed)
    against ``baseline`` on fresh inputs (:func:`compare_speed`, whose ``check``,
    ``repeats``, ``warmup`` and ``number`` these are), then grade the ratio
    (:func:`assert_speed_ratio`): at most ``limit`` times the baseline's time. Returns
    the comparison."""
    speed = compare_speed(
        candidate, baseline, make_inputs, check=check, repeats=repeats, warmup=warmup, number=number
    )
    assert_speed_ratio(
        speed.ratio,
        limit=limit,
        what=what,
        hint=hint,
        measured=str(speed),
        baseline_name=baseline_name,
        record_metric=record_metric,
    )
    return speed


# --- the learner's code in a process of its own ------------------------------------


def run_in_fresh_process(
    script: str,
    args: list[str],
    *,
    module_files: Sequence[str],
    inputs: dict[str, bytes] | None = None,
    timeout_s: float = 90.0,
    outputs: tuple[str, ...] = (),
) -> ScriptRun:
    """Run the grader's ``script`` in a fresh Python process with the learner's module,
    and let the OS measure it (peak resident memory, exit status): for checks that need
    a process of their own. The script finds the module's files (``impl_files``, copies
    in execution order) as a JSON list in ``sys.argv[1]``, then ``args``; it runs in a
    fresh directory holding ``inputs`` (name -> bytes) and sends back the ``outputs`` it
    writes there. Under ``--sandbox`` the process runs in the run's jail under the
    workers' rules. See :func:`llmkit.sandbox.script.run_learner_script`."""
    return run_learner_script(
        script,
        args,
        module_files=list(module_files),
        inputs=inputs,
        timeout_s=timeout_s,
        outputs=outputs,
    )
