"""Exercise 7.5 — a paged KV cache and continuous batching.

Replace every ``raise NotImplementedError`` with your implementation, then run

    pytest exercises/section7/test_paged_attention.py      (or: llmkit check 7.5)

A serving engine keeps the keys and values of every sequence it is generating in a
KV cache. Giving each sequence one contiguous slab sized for its longest possible
output wastes most of the memory; vLLM's PagedAttention (Kwon et al., 2023) cuts the
cache into fixed-size *blocks* instead, as an operating system pages memory, and
gives each sequence a *block table*: logical block i of the sequence (its tokens
i * block_size ... (i + 1) * block_size - 1) lives in physical block table[i].
You write the three pieces around it:

* ``BlockManager``: hands out and takes back blocks, one table per sequence, blocks
  shared by forked sequences (reference-counted, copied on write);
* ``paged_attention``: one decode step of attention that reads keys and values
  through the block tables;
* ``Scheduler``: continuous batching: every step decodes one token for each running
  sequence and admits waiting requests first come, first served, within a token
  budget; when the blocks run out it preempts the newest sequence, whose blocks are
  freed and whose tokens are recomputed when it is admitted again.

``Request`` and ``Batch`` (what the scheduler takes and returns), ``OutOfBlocksError``
and the helpers at the end (``snapshot``, ``probe``, ``traced_steps``, ``simulate``:
the tests read your objects through them) are given: keep them as they are.
``simulate`` is also the quickest way to watch your scheduler at work.

Nothing is banned: index, gather and call ``F.scaled_dot_product_attention`` as you
like. No Python loop over the sequences of a batch in ``paged_attention``, though:
the graders time it against torch's SDPA on the same keys and values laid out
contiguously, and allow 6x its time (one gather of every block table and SDPA with a
length mask takes about 2x; a loop over 64 sequences, 12x to 50x).
"""

from __future__ import annotations

import json
import math  # noqa: F401  (you may want math.sqrt)
import os
import traceback
from collections import deque  # noqa: F401  (a good waiting queue and free list)
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F  # noqa: F401


class OutOfBlocksError(RuntimeError):
    """Raised when an operation needs more free blocks than the manager has left."""


# --- the block manager ------------------------------------------------------------


class BlockManager:
    """The KV cache's blocks: ``num_blocks`` physical blocks of ``block_size`` token
    slots each, with ids 0 .. num_blocks - 1, and one block table per sequence.

    ``BlockManager(num_blocks, block_size)``; both must be >= 1 (else ValueError).
    Keep them as the attributes ``num_blocks`` and ``block_size``.

    A sequence that holds n tokens owns ceil(n / block_size) blocks, listed in its
    block table in logical order: token t lives in slot t % block_size of physical
    block ``table[t // block_size]``. Which free block you hand out is up to you.

    A block may be shared: ``fork`` gives a child sequence its parent's table, and
    every block then counts one more reference. A block returns to the free pool when
    its last reference goes; a block written by one sequence while another still
    reads it is copied first (copy on write, in ``append``).

    Errors, always raised before anything changes:
        * a ``seq_id`` the manager does not hold (never allocated, or freed):
          ``KeyError``, from every method that takes one;
        * ``allocate`` or ``fork`` onto a ``seq_id`` that already holds blocks, or a
          negative ``n_tokens``: ``ValueError``;
        * not enough free blocks: ``OutOfBlocksError``.
    """

    def __init__(self, num_blocks: int, block_size: int):
        raise NotImplementedError

    @property
    def num_free(self) -> int:
        """How many blocks are free (owned by no sequence)."""
        raise NotImplementedError

    def allocate(self, seq_id: int, n_tokens: int) -> None:
        """Give a new sequence room for ``n_tokens`` tokens (its prompt): ceil(n_tokens /
        block_size) fresh blocks, each with one reference. ``n_tokens`` may be 0 (an
        empty table). All or nothing: OutOfBlocksError if too few blocks are free."""
        raise NotImplementedError

    def can_allocate(self, n_tokens: int) -> bool:
        """Whether ``allocate(some_new_seq, n_tokens)`` would find enough free blocks."""
        raise NotImplementedError

    def append(self, seq_id: int) -> tuple[int, int] | None:
        """Make room for one more token of ``seq_id`` (it then holds one more token).

        * If the last block is full (or the table is empty), add a fresh block at the
          end of the table; return None.
        * Else, if the last block is shared with another sequence (its reference count
          is above 1), the new token would be written into a block someone else reads:
          copy on write. Take a fresh block, put it in place of the last one in this
          table (the shared block loses this reference), and return ``(src, dst)``: the
          caller must copy the tokens already in block ``src`` into block ``dst``.
        * Else there is a free slot in a block of its own: nothing changes; return None.

        OutOfBlocksError, with nothing changed, when a fresh block is needed and none is free.
        """
        raise NotImplementedError

    def can_append(self, seq_id: int) -> bool:
        """Whether ``append(seq_id)`` would succeed now (it needs no fresh block, or one is free)."""
        raise NotImplementedError

    def fork(self, parent: int, child: int) -> None:
        """A new sequence ``child`` that shares every block of ``parent`` (parallel
        sampling, beam search): the same block table and token count, one more
        reference on each block. Needs no free block."""
        raise NotImplementedError

    def free(self, seq_id: int) -> None:
        """Forget ``seq_id``: drop its reference on each of its blocks; a block whose
        count reaches 0 is free again. Blocks another sequence still holds stay taken."""
        raise NotImplementedError

    def block_table(self, seq_id: int) -> list[int]:
        """``seq_id``'s physical block ids in logical order, as a new list of ints."""
        raise NotImplementedError

    def num_tokens(self, seq_id: int) -> int:
        """How many tokens ``seq_id`` holds (allocate's n_tokens, plus one per append)."""
        raise NotImplementedError

    def ref_count(self, block_id: int) -> int:
        """How many block tables hold block ``block_id`` (0 when it is free)."""
        raise NotImplementedError


# --- attention through the block tables --------------------------------------------


def paged_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    context_lens: torch.Tensor,
    scale: float | None = None,
) -> torch.Tensor:
    """One decode step of attention over a paged KV cache: one query per sequence.

    Shapes (S sequences, H heads, D features per head, NB physical blocks of
    ``bs`` slots, at most ``max_blocks`` blocks per sequence):
        q:            (S, H, D), float32 or float64: each sequence's newest token.
        k_cache:      (NB, bs, H, D), q's dtype: key of token t of sequence s at
                      ``k_cache[block_tables[s, t // bs], t % bs]``.
        v_cache:      (NB, bs, H, D), the values, laid out as the keys.
        block_tables: (S, max_blocks), int64 (or int32): physical block ids, padded
                      with -1 after each sequence's last block.
        context_lens: (S,), int64, each >= 1: sequence s attends to its tokens
                      0 .. context_lens[s] - 1 (the newest one included).
        scale:        the scores' factor; None means 1 / sqrt(D).
        returns       (S, H, D), q's dtype: for each sequence and head,
                      softmax(scale * q . k_t over its tokens t) @ v_t.

    The slots of a sequence's last block past its ``context_len``, the padding
    entries and the blocks no table names hold garbage (other sequences' tokens,
    stale values): nothing of theirs may reach the output. Inputs are read-only.
    """
    raise NotImplementedError


# --- continuous batching -------------------------------------------------------------


@dataclass
class Request:
    """A generation request: a prompt of ``prompt_len`` tokens, then
    ``max_new_tokens`` generated tokens, one per step it is scheduled in."""

    seq_id: int
    prompt_len: int
    max_new_tokens: int


@dataclass
class Batch:
    """What one ``Scheduler.step()`` did (sequence ids; lists of ints)."""

    prefill: list[int] = field(default_factory=list)  # admitted this step, in admission order
    decode: list[int] = field(default_factory=list)  # running sequences that decoded one token, oldest first
    preempted: list[int] = field(default_factory=list)  # sent back to the waiting queue, blocks freed
    finished: list[int] = field(default_factory=list)  # produced their last token this step, blocks freed
    num_tokens: int = 0  # tokens computed this step: 1 per decode, the whole context per prefill


class Scheduler:
    """Continuous batching over a ``BlockManager``, as vLLM schedules.

    ``Scheduler(max_seqs, max_tokens, block_manager)``: at most ``max_seqs``
    sequences hold blocks (run) at once; one step computes at most ``max_tokens``
    tokens. ValueError unless 1 <= max_seqs <= max_tokens. Keep the manager as the
    attribute ``block_manager``; sequence ids are the requests' ``seq_id``.

    A sequence that has generated g tokens holds prompt_len + g - 1 tokens in the
    cache while it runs (the newest generated token's keys and values are computed
    by the next step). Admitting it is a *prefill*: it needs prompt_len + g tokens
    (the prompt, plus the g tokens generated before a preemption: they are
    recomputed) of the step's budget and ``block_manager.allocate(seq_id,
    prompt_len + g)``. A *decode* costs 1 token and ``block_manager.append(seq_id)``.
    Either way the sequence generates one token in that step.

    ``add(request)``: queue a ``Request`` at the back of the waiting queue.
    ValueError for a ``seq_id`` seen before, a ``prompt_len`` or ``max_new_tokens``
    below 1, or a request that could never run: one whose largest prefill,
    prompt_len + max_new_tokens - 1 tokens, exceeds ``max_tokens`` or needs more
    blocks than the manager has in all.

    ``step() -> Batch``, in this order:

    1. Decode: every running sequence, oldest admission first, gets room for one
       token (``append``). When ``can_append`` says no block is free, preempt the
       newest running sequence (the last admitted: it has made the least progress):
       free its blocks, put it back at the front of the waiting queue and list it in
       ``preempted``; retry, until the sequence gets its room or is itself the
       newest, and preempted. Preempted sequences keep their generated tokens: when
       admitted again they recompute them in their prefill.
    2. Prefill, only in a step that preempted nobody: while fewer than ``max_seqs``
       sequences run, take the request at the front of the waiting queue and admit
       it if its prefill fits both the tokens left in this step's budget
       (``max_tokens`` minus the decodes and the prefills before it) and the free
       blocks; else stop: first come, first served, nobody jumps the queue.
    3. Every sequence decoded or prefilled generates one token; one that reaches its
       ``max_new_tokens`` is finished: free its blocks, list it in ``finished``.

    A step with nothing to do returns an empty Batch.
    """

    def __init__(self, max_seqs: int, max_tokens: int, block_manager: BlockManager):
        raise NotImplementedError

    def add(self, request: Request) -> None:
        raise NotImplementedError

    def step(self) -> Batch:
        raise NotImplementedError


# --- given: how the tests read your objects (keep as is) ----------------------------
# The graders run your code in a sandboxed process and read its state through these
# helpers: one call each, answers as plain data.


def snapshot(manager: BlockManager, seq_ids: list[int], ref_counts: bool = True) -> dict:
    """Given. The manager's state as plain data: ``num_free``, ``tables`` ({seq_id: its
    block table, or None when ``block_table`` raises KeyError}) for ``seq_ids`` and, with
    ``ref_counts``, ``ref_counts`` (one per block)."""
    tables = {}
    for seq_id in seq_ids:
        try:
            tables[seq_id] = [int(b) for b in manager.block_table(seq_id)]
        except KeyError:
            tables[seq_id] = None
    state = {"num_free": int(manager.num_free), "tables": tables}
    if ref_counts:
        state["ref_counts"] = [int(manager.ref_count(b)) for b in range(manager.num_blocks)]
    return state


def probe(manager: BlockManager, calls: list[tuple[str, tuple]], seq_ids: list[int]) -> dict:
    """Given. Each ``(method, args)`` of ``calls`` made on ``manager`` in turn, then its
    ``snapshot`` for ``seq_ids``: ``{"results": [...], **snapshot}``, where a result is
    ``{"value": what the call returned}`` or ``{"error": [exception type, message, names
    of its classes, where it was raised]}``."""
    results = []
    for method, args in calls:
        try:
            results.append({"value": getattr(manager, method)(*args)})
        except NotImplementedError:
            raise
        except Exception as exc:  # the tests decide which errors are right
            frames = traceback.extract_tb(exc.__traceback__)
            where = f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name}"
            names = [cls.__name__ for cls in type(exc).__mro__]
            results.append({"error": [type(exc).__name__, str(exc)[:300], names, where]})
    return {"results": results, **snapshot(manager, seq_ids)}


def traced_steps(
    scheduler: Scheduler, holding: list[int], n_steps: int = 1, until_idle: bool = False
) -> list[dict]:
    """Given. ``n_steps`` calls of ``scheduler.step()``, each as a record of plain data:
    the Batch's fields, then the manager's ``snapshot`` (no ref_counts) for the
    sequences that hold blocks after it: ``holding`` (those that held blocks before, in
    admission order) less the preempted and finished, plus the admitted. With
    ``until_idle``, stops early after a step that did nothing and left nobody holding blocks."""
    records = []
    for _ in range(n_steps):
        batch = scheduler.step()
        record = {
            "prefill": [int(s) for s in batch.prefill],
            "decode": [int(s) for s in batch.decode],
            "preempted": [int(s) for s in batch.preempted],
            "finished": [int(s) for s in batch.finished],
            "num_tokens": int(batch.num_tokens),
        }
        gone = set(record["preempted"]) | set(record["finished"])
        holding = [s for s in holding if s not in gone] + [s for s in record["prefill"] if s not in gone]
        record.update(snapshot(scheduler.block_manager, holding, ref_counts=False))
        records.append(record)
        idle = not (record["prefill"] or record["decode"] or record["preempted"] or record["finished"])
        if until_idle and idle and not holding:
            break
    return records


def simulate(
    requests: list[tuple[int, int, int, int]],
    *,
    num_blocks: int,
    block_size: int,
    max_seqs: int,
    max_tokens: int,
    max_steps: int = 100_000,
    as_json: bool = False,
) -> list[dict] | str:
    """Given. Serve a workload: ``requests`` are ``(arrival_step, seq_id, prompt_len,
    max_new_tokens)``; before step t every request arriving at or before t is added
    (in arrival order, ties in list order). Runs until every request has finished, or
    ``max_steps`` steps; returns one :func:`traced_steps` record per step (with
    ``as_json``, as one JSON string: the graders fetch long traces so)."""
    manager = BlockManager(num_blocks, block_size)
    scheduler = Scheduler(max_seqs, max_tokens, manager)
    arrivals = sorted(requests, key=lambda r: r[0])
    trace: list[dict] = []
    holding: list[int] = []
    arrived = finished = 0
    for step in range(max_steps):
        while arrived < len(arrivals) and arrivals[arrived][0] <= step:
            _, seq_id, prompt_len, max_new_tokens = arrivals[arrived]
            scheduler.add(Request(seq_id, prompt_len, max_new_tokens))
            arrived += 1
        (record,) = traced_steps(scheduler, holding)
        trace.append(record)
        holding = list(record["tables"])
        finished += len(record["finished"])
        if arrived == len(arrivals) and finished >= len(arrivals):
            break
    return json.dumps(trace) if as_json else trace
