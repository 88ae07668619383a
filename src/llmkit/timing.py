"""Same-run speed comparison: candidate against baseline, interleaved, on fresh inputs.

Shared machines are noisy, so nothing here is an absolute limit: both sides run
alternately, several times, and only the ratio of medians is reported or graded.

Every timed call gets inputs of its own: ``make(i)`` builds the i-th inputs (new
storage, and new values where the grader can draw them), both sides get the same
i-th inputs, and every answer is checked against the baseline's answer to the same
inputs. A learner who keeps answers from earlier calls (a cache keyed on the
inputs' identity or address) gets a wrong answer, and the speed test fails; the
leaderboard's ratio cannot be bought that way. Making the inputs is never timed.
Both sides run with one torch thread, as sandbox workers do.
"""

from __future__ import annotations

import copy
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Inputs:
    """The i-th inputs of a timed call, when keyword arguments are needed (otherwise
    ``make`` may return a tuple of positional arguments)."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SpeedComparison:
    candidate_s: float  # median seconds per call
    baseline_s: float
    repeats: int
    number: int = 1  # calls per repeat and side, each on fresh inputs

    @property
    def ratio(self) -> float:
        """candidate time / baseline time: 1.0 is as fast, 2.0 twice as slow."""
        return self.candidate_s / self.baseline_s

    def __str__(self) -> str:
        return (
            f"median {self.candidate_s * 1e3:.3f} ms vs baseline {self.baseline_s * 1e3:.3f} ms "
            f"= {self.ratio:.2f}x the baseline's time ({self.repeats} interleaved repeats of "
            f"{self.number} call{'s' if self.number != 1 else ''} on fresh inputs)"
        )


def same_answer(got, want) -> None:
    """Default check of a timed answer: the same structure, tensors and arrays within
    the dtype's tolerance (:func:`llmkit.checks.assert_close`), anything else equal."""
    from llmkit.checks import CheckFailure, assert_close

    if isinstance(want, (torch.Tensor, np.ndarray)):
        assert_close(got, want, name="answer")
    elif isinstance(want, (list, tuple)):
        if not isinstance(got, (list, tuple)) or len(got) != len(want):
            raise CheckFailure(f"expected a sequence of {len(want)} items, got {type(got).__name__}")
        for g, w in zip(got, want):
            same_answer(g, w)
    elif isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            raise CheckFailure("expected a dict with other keys")
        for key in want:
            same_answer(got[key], want[key])
    elif type(got) is not type(want) or got != want:
        raise CheckFailure(f"expected {str(want)[:200]}, got {str(got)[:200]}")


def _as_inputs(value) -> Inputs:
    if isinstance(value, Inputs):
        return value
    if isinstance(value, tuple):
        return Inputs(value)
    raise TypeError(f"make(i) must return a tuple of arguments or an Inputs, not {type(value).__name__}")


def _copy(inputs: Inputs) -> Inputs:
    """Storage of its own for the other side (so an in-place change cannot leak across)."""
    return copy.deepcopy(inputs)


class _Side:
    """One side of the comparison: how a call on given inputs is made and timed."""

    def __init__(self, fn: Callable[..., Any], clock: Callable[[], float] | None, worker=None):
        self.fn, self.clock, self.worker = fn, clock, worker

    def __call__(self, inputs: Inputs) -> tuple[Any, float]:
        if self.worker is not None:  # the learner's worker: its CPU time, read from the OS here
            return self.worker.timed_call(
                self.fn, list(inputs.args), dict(inputs.kwargs), doing="a timed call"
            )
        start = self.clock()
        value = self.fn(*inputs.args, **inputs.kwargs)
        return value, self.clock() - start


class _WireSide(_Side):
    """The baseline beside a sandboxed candidate, given the same trip: its inputs arrive
    over a socket in the wire format and are decoded, and its answer is encoded and
    sent back, all inside its timing, as a worker does for the candidate. Its time is
    the CPU time of the thread that does this (another thread plays the grader)."""

    def __init__(self, fn: Callable[..., Any]):
        super().__init__(fn, None)
        self.ends = socket.socketpair()

    def close(self) -> None:
        for end in self.ends:
            end.close()

    def __call__(self, inputs: Inputs) -> tuple[Any, float]:
        from llmkit.sandbox import wire

        def refuse(value):
            raise TypeError(f"{type(value).__name__} is not plain data")

        encoder = wire.Encoder(refuse)
        doc = {"op": "call", "args": encoder.encode([list(inputs.args), dict(inputs.kwargs)])}
        grader, worker = (end.fileno() for end in self.ends)
        failed: list[BaseException] = []

        def grader_side() -> None:
            try:
                wire.write_message(grader, doc, encoder.buffers)
                wire.read_message(grader)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failed.append(exc)

        thread = threading.Thread(target=grader_side, daemon=True)
        thread.start()
        start = time.thread_time()
        message, buffers = wire.read_message(worker)
        args, kwargs = wire.Decoder(buffers, refuse).decode(message["args"])
        with torch.enable_grad():  # as in the worker, which knows nothing of the grader's no_grad
            value = self.fn(*args, **kwargs)
        answer = wire.Encoder(refuse)
        wire.write_message(worker, {"value": answer.encode(value)}, answer.buffers)
        seconds = time.thread_time() - start
        thread.join()
        if failed:
            raise failed[0]
        return value, seconds


def compare_speed(
    candidate: Callable[..., Any],
    baseline: Callable[..., Any],
    make: Callable[[int], tuple | Inputs],
    *,
    check: Callable[[Any, Any], None] | None = same_answer,
    repeats: int = 7,
    warmup: int = 1,
    number: int | None = None,
    clock: Callable[[], float] | None = None,
) -> SpeedComparison:
    """Time ``candidate`` and ``baseline`` alternately on fresh inputs; return the medians.

    ``candidate`` is the learner's callable itself (a remote handle when sandboxed, not
    a lambda around it). ``make(i)`` returns the i-th inputs: a tuple of arguments or
    an :class:`Inputs`. Each timed call gets new inputs; both sides get the same i-th
    inputs (each its own copy), and ``check(candidate_answer, baseline_answer)``
    (default :func:`same_answer`) runs on every pair; a mismatch fails with
    :class:`~llmkit.checks.CheckFailure`. Making the inputs is never timed.

    ``number`` calls make one timing (the mean of their times); by default it is chosen
    so a timing of the slower side lasts about 20 ms. The order alternates each repeat
    so neither side always runs on a warmer cache.

    In-process both sides use ``clock`` (default: wall time). Under ``--sandbox`` the
    candidate's time is the CPU time the OS counted for its worker from before its
    inputs were sent until its answer came back, read by this process (the inputs
    travel in a request of their own, the call in another; see
    :meth:`llmkit.sandbox.channel.Worker.timed_call`), and the baseline's is the CPU
    time of a thread here that makes the same trip: the inputs read from a socket and
    decoded, the call, the answer encoded and sent. Nothing the learner's process
    reports about itself is used.
    """
    from llmkit.checks import CheckFailure
    from llmkit.sandbox import active, worker_of

    worker = worker_of(candidate) if clock is None else None
    if worker is not None:
        cand, base = _Side(candidate, None, worker), _WireSide(baseline)
    elif active() is not None and clock is None:
        raise TypeError(
            "compare_speed under --sandbox: pass the learner's callable itself (a remote handle), "
            "not a function around it"
        )
    else:
        clock = clock or time.perf_counter
        cand, base = _Side(candidate, clock), _Side(baseline, clock)

    counter = iter(range(1 << 62))

    def pair_of_calls(n: int, candidate_first: bool) -> tuple[float, float]:
        """``n`` fresh inputs, each side called on every one; mean seconds per call."""
        made = [_as_inputs(make(next(counter))) for _ in range(n)]
        answers: dict[str, list] = {"cand": [], "base": []}
        spent = {"cand": 0.0, "base": 0.0}
        order = [("cand", cand), ("base", base)]
        for name, side in order if candidate_first else reversed(order):
            for inputs in made:
                value, seconds = side(_copy(inputs))
                answers[name].append(value)
                spent[name] += seconds
        if check is not None:
            for got, want in zip(answers["cand"], answers["base"]):
                try:
                    check(got, want)
                except AssertionError as exc:
                    raise CheckFailure(
                        f"a timed call (on fresh inputs, the same for your code and the baseline) gave "
                        f"an answer that differs from the baseline's: {exc}",
                        hint="every timed call gets new inputs: an answer kept from an earlier call "
                        "(a cache keyed on the inputs' identity or address) is wrong here",
                    ) from None
        return spent["cand"] / n, spent["base"] / n

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: one thread's work against one thread's
    try:
        once = None
        for _ in range(warmup):
            once = pair_of_calls(1, True)
        if number is None:
            once = once or pair_of_calls(1, True)
            number = max(1, min(200, int(0.02 / max(*once, 1e-7))))
        cand_s, base_s = [], []
        for i in range(repeats):
            c, b = pair_of_calls(number, i % 2 == 0)
            cand_s.append(c)
            base_s.append(b)
    finally:
        torch.set_num_threads(threads)
        if isinstance(base, _WireSide):
            base.close()
    return SpeedComparison(statistics.median(cand_s), statistics.median(base_s), repeats, number)


def compare_fixed(
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    *,
    repeats: int = 7,
    warmup: int = 1,
    number: int | None = None,
    clock: Callable[[], float] | None = None,
) -> SpeedComparison:
    """Time two argument-less callables alternately, in this process, on whatever inputs
    they hold; return the medians. For benchmarks of trusted code (``benchmarks/``):
    the same inputs every call and no check of the answers, so a cache would win here.
    Graders use :func:`compare_speed`."""
    clock = clock or time.perf_counter

    def once(fn: Callable[[], object], n: int) -> float:
        start = clock()
        for _ in range(n):
            fn()
        return (clock() - start) / n

    for _ in range(warmup):
        candidate()
        baseline()
    if number is None:
        number = max(1, min(1000, int(0.02 / max(once(candidate, 1), once(baseline, 1), 1e-7))))
    cand, base = [], []
    for i in range(repeats):
        pair = [(candidate, cand), (baseline, base)]
        for fn, sink in pair if i % 2 == 0 else reversed(pair):
            sink.append(once(fn, number))
    return SpeedComparison(statistics.median(cand), statistics.median(base), repeats, number)
