"""Support for exercise 7.5 (paged KV cache and continuous batching): what its public
tests, graders, notebook and `llmkit show` share. It ships to learners: nothing here
solves the exercise.

* ``paged_attention``: the inputs the tests draw (block tables over a shuffled cache
  whose unused slots hold garbage) and the oracle, gather-then-SDPA: each sequence's
  keys and values gathered token by token, then torch's
  ``F.scaled_dot_product_attention``.
* ``BlockManager``: :class:`ManagerChecker` runs operations on the learner's manager
  and checks each against the docstring's rules (fresh blocks, tables, reference
  counts, the free count, errors that change nothing), reading the state through the
  stub's ``probe``; :func:`manager_machine` is hypothesis's stateful test around it.
* ``Scheduler``: :class:`TraceChecker` follows a run step by step (the records of the
  stub's ``traced_steps``/``simulate``) and checks the invariants: no block owned
  twice, the free count conserved, the token budget, the newest sequence preempted,
  first come first served, every request finished; :func:`workload` draws seeded
  request streams and :func:`scheduler_machine` is the stateful test.

Under the graders the learner's objects live in a sandboxed worker: every check here
reads plain data (the snapshots) and decides on this side.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from llmkit.figures import Figure, new_figure, png
from llmkit.testing import (
    FLOAT_DTYPES,
    SEEDS,
    CheckFailure,
    Draw,
    Misconception,
    Misconceptions,
    assert_close,
    check_equal,
    pipelined,
    unchanged,
)


def blocks_for(n_tokens: int, block_size: int) -> int:
    """ceil(n_tokens / block_size): the blocks ``n_tokens`` tokens occupy."""
    return -(-n_tokens // block_size)


# --- paged attention: inputs and the oracle ---------------------------------------------


@st.composite
def paged_case(draw_st, max_seqs: int = 4, max_len: int = 20, dtypes=FLOAT_DTYPES):
    """One ``paged_attention`` call: sizes, context lengths, padding, dtype, scale, seed."""
    n_seqs = draw_st(st.integers(1, max_seqs))
    return dict(
        heads=draw_st(st.integers(1, 3)),
        dim=draw_st(st.integers(1, 8)),
        block_size=draw_st(st.integers(1, 5)),
        lens=draw_st(st.lists(st.integers(1, max_len), min_size=n_seqs, max_size=n_seqs)),
        extra_columns=draw_st(st.integers(0, 2)),  # -1 padding beyond the longest table
        spare_blocks=draw_st(st.integers(0, 3)),  # blocks no table names
        dtype=draw_st(dtypes),
        scale=draw_st(st.one_of(st.none(), st.floats(0.05, 2.0))),
        seed=draw_st(SEEDS),
    )


def paged_inputs(case: dict) -> tuple:
    """``(q, k_cache, v_cache, block_tables, context_lens, scale)`` for a :func:`paged_case`.

    The sequences' blocks are scattered over the cache in a random order; every slot no
    sequence may read (past a context length, in a spare block) holds large garbage."""
    rng = Draw(case["seed"])
    bs, h, d, dtype = case["block_size"], case["heads"], case["dim"], case["dtype"]
    context_lens = torch.tensor(list(case["lens"]), dtype=torch.int64)
    counts = (context_lens + bs - 1) // bs
    n_blocks = int(counts.sum()) + case["spare_blocks"]
    order = torch.randperm(n_blocks, generator=rng.generator)
    width = int(counts.max()) + case["extra_columns"]
    tables = torch.full((len(context_lens), width), -1, dtype=torch.int64)
    tables[torch.arange(width) < counts[:, None]] = order[: int(counts.sum())]  # row by row
    k_cache = rng.tensor(n_blocks, bs, h, d, dtype=torch.float64, scale=8.0) + 20.0  # garbage everywhere
    v_cache = rng.tensor(n_blocks, bs, h, d, dtype=torch.float64, scale=8.0) - 20.0
    seq = torch.repeat_interleave(torch.arange(len(context_lens)), context_lens)  # each real token's
    pos = torch.arange(len(seq)) - (torch.cumsum(context_lens, 0) - context_lens)[seq]  # sequence, position
    rows = tables[seq, pos // bs]
    k_cache[rows, pos % bs] = rng.tensor(len(seq), h, d, dtype=torch.float64)
    v_cache[rows, pos % bs] = rng.tensor(len(seq), h, d, dtype=torch.float64)
    q = rng.tensor(len(context_lens), h, d, dtype=torch.float64, scale=1.5)
    return q.to(dtype), k_cache.to(dtype), v_cache.to(dtype), tables, context_lens, case["scale"]


def describe_paged(case: dict) -> str:
    return (
        f"paged_attention with {len(case['lens'])} sequences, context_lens={list(case['lens'])}, "
        f"block_size={case['block_size']}, H={case['heads']}, D={case['dim']}, "
        f"{str(case['dtype']).removeprefix('torch.')}, scale={case['scale']}"
    )


def gathered_attention(q, k_cache, v_cache, block_tables, context_lens, scale=None, *, whole_blocks=False):
    """The oracle: for each sequence, its keys and values gathered token by token
    through its block table into contiguous (H, L, D) tensors, then torch's SDPA with
    the one query. ``whole_blocks`` reads every slot of the blocks the table names
    (a known mistake)."""
    bs = k_cache.shape[1]
    out = torch.empty_like(q)
    for s in range(q.shape[0]):
        n = int(context_lens[s])
        if whole_blocks:
            n = blocks_for(n, bs) * bs
        t = torch.arange(n)
        rows = block_tables[s].long()[t // bs]
        keys = k_cache[rows, t % bs].transpose(0, 1)  # (H, L, D)
        values = v_cache[rows, t % bs].transpose(0, 1)
        out[s] = F.scaled_dot_product_attention(q[s][:, None, :], keys, values, scale=scale)[:, 0, :]
    return out


# --- the block manager, checked operation by operation ------------------------------------


class ManagerChecker:
    """The learner's ``BlockManager(num_blocks, block_size)``, driven one operation at a
    time; each operation is checked against the docstring's rules, on the manager's
    state read back in the same call (the stub's ``probe``: plain data, one round trip
    under the sandbox).

    The checker remembers only what the rules pin down: each live sequence's token
    count and block table (as the manager reported it, once checked). Which free block
    a manager hands out is its own business; that the block was free is not.
    """

    def __init__(self, impl, num_blocks: int, block_size: int):
        self.impl = impl
        self.num_blocks, self.block_size = num_blocks, block_size
        self.ops = [f"BlockManager({num_blocks}, {block_size})"]
        self.manager = impl.BlockManager(num_blocks, block_size)
        self.tokens: dict[int, int] = {}
        self.tables: dict[int, list[int]] = {}
        self.state: dict = {}
        _, snap = self._probe([])
        self._check_consistent(snap)

    # --- what the rules say -----------------------------------------------------------

    def holders(self, block: int) -> list[int]:
        return [s for s, table in self.tables.items() if block in table]

    def used(self) -> set[int]:
        return {b for table in self.tables.values() for b in table}

    @property
    def expected_free(self) -> int:
        return self.num_blocks - len(self.used())

    # --- failures -----------------------------------------------------------------------

    def where(self) -> str:
        shown = self.ops if len(self.ops) <= 12 else [self.ops[0], "...", *self.ops[-10:]]
        return "after " + "; ".join(shown)

    def fail(self, message: str, slug: str | None = None, hint: str | None = None) -> CheckFailure:
        text = f"{message}\n{self.where()}"
        return MISCONCEPTIONS.failure(slug, text, hint) if slug else CheckFailure(text, hint=hint)

    # --- talking to the manager ---------------------------------------------------------

    def _probe(self, calls: list[tuple[str, tuple]], extra: tuple[int, ...] = ()) -> tuple[list, dict]:
        """``calls`` made in turn, then the state: (one result per call, the snapshot)."""
        got = self.impl.probe(self.manager, calls, [*self.tables, *extra])
        if not (
            isinstance(got, dict)
            and isinstance(got.get("tables"), dict)
            and isinstance(got.get("results"), list)
            and len(got["results"]) == len(calls)
        ):
            raise self.fail(
                f"probe() gave {type(got).__name__}: keep the given probe() and snapshot() as they are"
            )
        return got["results"], got

    @staticmethod
    def error(result: dict) -> list | None:
        """[type, message, class names, where] when the call raised, else None."""
        return result.get("error") if isinstance(result, dict) else None

    def raised(self, result: dict, kind: str) -> bool:
        err = self.error(result)
        return err is not None and kind in err[2]

    def _unexpected(self, call: str, err: list, why: str, slug: str | None = None):
        raise self.fail(f"{call} raised {err[0]}({err[1]!r}) at {err[3]}, but {why}", slug)

    def _expect_error(self, call: str, result: dict, snap: dict, kind: str, why: str) -> None:
        """``call`` must have raised ``kind`` and changed nothing."""
        err = self.error(result)
        if err is None:
            raise self.fail(f"{call} returned normally: expected {kind}, as {why}")
        if kind not in err[2]:
            self._unexpected(call, err, f"{why}, which is a {kind}")
        now = {
            "num_free": snap.get("num_free"),
            "ref_counts": snap.get("ref_counts"),
            "tables": {s: snap["tables"].get(s) for s in self.tables},
        }
        if now != self.state:
            raise self.fail(f"{call} raised {kind}, as it should, but changed the manager's state first")

    def _question(self, call: str, result: dict, expected: bool, why: str, slug: str | None = None) -> None:
        err = self.error(result)
        if err is not None:
            self._unexpected(call, err, "it only answers a question")
        if result.get("value") is not expected:
            raise self.fail(f"{call} is {result.get('value')!r}, but {why}", slug)

    def _table(self, snap: dict, seq: int, call: str) -> list[int]:
        table = snap["tables"].get(seq)
        if table is None:
            raise self.fail(
                f"after {call}, block_table({seq}) raised KeyError: the manager lost sequence {seq}"
            )
        return table

    def _fresh(self, blocks: list[int], call: str) -> None:
        """``blocks`` (new in a table) were free before ``call``, and are distinct."""
        used = self.used()
        for b in blocks:
            if not (isinstance(b, int) and 0 <= b < self.num_blocks):
                raise self.fail(f"{call} put block {b!r} in a table: ids go from 0 to {self.num_blocks - 1}")
            if b in used:
                raise self.fail(
                    f"{call} handed out block {b}, which sequence {self.holders(b)[0]} still holds",
                    hint="hand out only blocks whose reference count is 0 (on the free list)",
                )
        if len(set(blocks)) != len(blocks):
            raise self.fail(f"{call} handed out the same block twice: {blocks}")

    def _check_consistent(self, snap: dict) -> None:
        """Every live table as remembered, reference counts = how many tables hold each
        block, and the free count = the blocks no table holds."""
        for seq, table in self.tables.items():
            got = snap["tables"].get(seq)
            if got != table:
                raise self.fail(
                    f"block_table({seq}) is {got}, but it was {table} and nothing since touched "
                    f"sequence {seq}"
                )
        refs = snap.get("ref_counts")
        if not (isinstance(refs, list) and len(refs) == self.num_blocks):
            raise self.fail(f"ref_count() over the {self.num_blocks} blocks gave {refs!r}")
        for b, got in enumerate(refs):
            holders = self.holders(b)
            if got != len(holders):
                held = f"sequences {holders} hold it" if holders else "no table holds it"
                raise self.fail(f"ref_count({b}) is {got}, but {held}")
        free = snap.get("num_free")
        if free != self.expected_free:
            raise self.fail(
                f"num_free is {free}, but {len(self.used())} of {self.num_blocks} blocks are in block "
                f"tables: {self.expected_free} should be free"
            )
        self.state = {
            "num_free": free,
            "ref_counts": refs,
            "tables": {s: snap["tables"][s] for s in self.tables},
        }

    # --- the operations -----------------------------------------------------------------

    def allocate(self, seq: int, n: int) -> None:
        call = f"allocate({seq}, {n})"
        self.ops.append(call)
        bs, free, need = self.block_size, self.expected_free, blocks_for(n, self.block_size)
        fits = need <= free
        over = n % bs == 0 and free == n // bs  # one block short, if n // bs + 1 are asked for
        (can, result), snap = self._probe([("can_allocate", (n,)), ("allocate", (seq, n))], (seq,))
        why = f"{n} tokens need {need} blocks of {bs} slots and {free} are free"
        self._question(f"can_allocate({n})", can, fits, why, "extra_block_on_multiple" if over else None)
        if not fits:
            self._expect_error(call, result, snap, "OutOfBlocksError", why)
            return
        err = self.error(result)
        if err is not None:
            slug = "extra_block_on_multiple" if over and "OutOfBlocksError" in err[2] else None
            self._unexpected(call, err, why, slug)
        table = self._table(snap, seq, call)
        try:
            check_equal(
                len(table),
                need,
                name=f"len(block_table({seq})) after {call} with block_size {bs}",
                suspects=MISCONCEPTIONS.on("blocks_for", n, bs),
            )
        except CheckFailure as failure:
            raise CheckFailure(f"{failure}\n{self.where()}") from None
        self._fresh(table, call)
        self.tokens[seq], self.tables[seq] = n, table
        self._check_consistent(snap)

    def append(self, seq: int) -> None:
        call = f"append({seq})"
        self.ops.append(call)
        n, table, bs = self.tokens[seq], self.tables[seq], self.block_size
        full = n % bs == 0
        shared = not full and len(self.holders(table[-1])) > 1
        free = self.expected_free
        fits = not (full or shared) or free > 0
        (can, result), snap = self._probe([("can_append", (seq,)), ("append", (seq,))])
        why = (
            f"sequence {seq} holds {n} tokens in {len(table)} blocks of {bs}"
            + (", the last one shared" if shared else "")
            + f", and {free} blocks are free"
        )
        self._question(f"can_append({seq})", can, fits, why)
        if not fits:
            self._expect_error(call, result, snap, "OutOfBlocksError", why)
            return
        err = self.error(result)
        if err is not None:
            self._unexpected(call, err, why)
        value = result.get("value")
        new = self._table(snap, seq, call)
        if full:
            if new[:-1] != table or len(new) != len(table) + 1:
                raise self.fail(
                    f"{call}: sequence {seq} held {n} tokens, filling its {len(table)} blocks of {bs}, "
                    f"so the new token needs one more block at the end: expected {table} + [a free "
                    f"block], got {new}"
                )
            self._fresh(new[-1:], call)
            if value is not None:
                raise self.fail(f"{call} returned {value!r}: nothing is shared, so nothing to copy (None)")
        elif shared:
            if value is None and new == table:
                raise self.fail(
                    f"{call}: the last block, {table[-1]}, is not full and sequences "
                    f"{self.holders(table[-1])} share it, yet {call} returned None and kept it: the new "
                    "token would overwrite what the other sequences read",
                    "no_copy_on_write",
                )
            if new[:-1] != table[:-1] or len(new) != len(table) or new[-1] == table[-1]:
                raise self.fail(
                    f"{call}: copy on write replaces the shared last block {table[-1]} with a fresh one: "
                    f"expected {table[:-1]} + [a free block], got {new}"
                )
            self._fresh(new[-1:], call)
            if _as_pair(value) != (table[-1], new[-1]):
                raise self.fail(
                    f"{call} returned {value!r}: after a copy on write it returns (src, dst) = "
                    f"({table[-1]}, {new[-1]}), the copy the caller must make"
                )
        else:
            if new != table:
                raise self.fail(
                    f"{call}: sequence {seq} holds {n} tokens, and its last block (its own) has a free "
                    f"slot, so its table stays {table}; got {new}"
                )
            if value is not None:
                raise self.fail(f"{call} returned {value!r}: nothing was copied, so it returns None")
        self.tokens[seq] += 1
        self.tables[seq] = new
        self._check_consistent(snap)

    def fork(self, parent: int, child: int) -> None:
        call = f"fork({parent}, {child})"
        self.ops.append(call)
        (result,), snap = self._probe([("fork", (parent, child))], (child,))
        err = self.error(result)
        if err is not None:
            self._unexpected(call, err, "forking needs no free block")
        table = self._table(snap, child, call)
        if table != self.tables[parent]:
            raise self.fail(
                f"after {call}, block_table({child}) is {table}: the child shares its parent's blocks, "
                f"{self.tables[parent]}, and takes no new ones"
            )
        self.tokens[child], self.tables[child] = self.tokens[parent], list(table)
        self._check_consistent(snap)

    def free(self, seq: int) -> None:
        call = f"free({seq})"
        self.ops.append(call)
        (result,), snap = self._probe([("free", (seq,))])
        err = self.error(result)
        if err is not None:
            self._unexpected(call, err, f"sequence {seq} holds blocks {self.tables[seq]}")
        table = self.tables.pop(seq)
        del self.tokens[seq]
        (lookup,), after = self._probe([("block_table", (seq,))])
        if not self.raised(lookup, "KeyError"):
            raise self.fail(f"after {call}, block_table({seq}) gives {lookup}: expected KeyError")
        still_held = [b for b in dict.fromkeys(table) if self.holders(b)]
        refs = snap.get("ref_counts")
        if still_held and (
            snap.get("num_free") == self.expected_free + len(still_held)
            or (
                isinstance(refs, list)
                and len(refs) == self.num_blocks
                and any(refs[b] == 0 for b in still_held)
            )
        ):
            raise self.fail(
                f"{call} returned blocks {still_held} to the free pool, but "
                + ", ".join(f"sequence {self.holders(b)[0]} still holds block {b}" for b in still_held),
                "shared_block_freed_early",
            )
        self._check_consistent(snap)

    def misuse(self, kind: str, seq: int) -> None:
        """Calls the docstring refuses, which must raise and change nothing: on an
        ``unknown`` sequence (KeyError), or onto a ``taken`` id (ValueError)."""
        if kind == "unknown":
            calls = [("append", (seq,)), ("free", (seq,)), ("block_table", (seq,)), ("num_tokens", (seq,))]
            calls.append(("fork", (seq, seq + 1)))
            error, why = "KeyError", f"sequence {seq} was never allocated or was freed"
        else:
            other = next(iter(self.tables))
            calls = [("allocate", (seq, 1)), ("fork", (other, seq))]
            error, why = "ValueError", f"sequence {seq} already holds blocks"
        results, snap = self._probe(calls)
        for (name, args), result in zip(calls, results):
            call = f"{name}({', '.join(map(str, args))})"
            self.ops.append(call)
            self._expect_error(call, result, snap, error, why)

    def check_tokens(self) -> None:
        """``num_tokens`` of every live sequence."""
        seqs = list(self.tokens)
        results, _ = self._probe([("num_tokens", (s,)) for s in seqs])
        for seq, result in zip(seqs, results):
            err = self.error(result)
            if err is not None:
                self._unexpected(f"num_tokens({seq})", err, f"sequence {seq} is live")
            if result.get("value") != self.tokens[seq]:
                raise self.fail(f"num_tokens({seq}) is {result.get('value')!r}, expected {self.tokens[seq]}")


def _as_pair(value):
    try:
        a, b = value
        return int(a), int(b)
    except (TypeError, ValueError):
        return value


def manager_machine(impl, *, max_blocks: int = 10, max_block_size: int = 4, max_tokens: int = 14):
    """Hypothesis's stateful test of ``impl.BlockManager``: random allocate, append,
    fork, free and refused calls, each checked by a :class:`ManagerChecker`."""

    def started(self) -> bool:
        return getattr(self, "checker", None) is not None

    def live(self) -> bool:
        return started(self) and bool(self.checker.tables)

    class BlockManagerMachine(RuleBasedStateMachine):
        @initialize(num_blocks=st.integers(1, max_blocks), block_size=st.integers(1, max_block_size))
        def start(self, num_blocks, block_size):
            self.checker = None
            self.checker = ManagerChecker(impl, num_blocks, block_size)
            self.next_id = 0

        def _new_id(self) -> int:
            self.next_id += 1
            return self.next_id - 1

        @precondition(started)
        @rule(n=st.integers(0, max_tokens))
        def allocate(self, n):
            self.checker.allocate(self._new_id(), n)

        @precondition(live)
        @rule(data=st.data())
        def append(self, data):
            for _ in range(data.draw(st.sampled_from([1, 1, 2, 3]), label="times")):
                if self.checker.tables:
                    self.checker.append(data.draw(st.sampled_from(sorted(self.checker.tables)), label="seq"))

        @precondition(live)
        @rule(data=st.data())
        def fork(self, data):
            self.checker.fork(
                data.draw(st.sampled_from(sorted(self.checker.tables)), label="parent"), self._new_id()
            )

        @precondition(live)
        @rule(data=st.data())
        def free(self, data):
            self.checker.free(data.draw(st.sampled_from(sorted(self.checker.tables)), label="seq"))

        @precondition(live)
        @rule(data=st.data())
        def refused(self, data):
            if data.draw(st.booleans(), label="unknown id"):
                self.checker.misuse("unknown", self.next_id + 7)
            else:
                self.checker.misuse(
                    "taken", data.draw(st.sampled_from(sorted(self.checker.tables)), label="seq")
                )

        @precondition(live)
        @rule()
        def token_counts(self):
            self.checker.check_tokens()

    return BlockManagerMachine


# --- the scheduler, checked step by step ----------------------------------------------------


class TraceChecker:
    """Follows a scheduler's run from its step records (``traced_steps``) and checks
    each step against the rules of ``Scheduler.step``.

    It keeps what the records imply: the waiting queue (front first), the running
    sequences in admission order, the tokens each has generated and holds in the cache.
    Call :meth:`arrive` for each ``add``, :meth:`check` with each record, and
    :meth:`check_finished` at the end.
    """

    def __init__(self, *, num_blocks: int, block_size: int, max_seqs: int, max_tokens: int):
        self.num_blocks, self.block_size = num_blocks, block_size
        self.max_seqs, self.max_tokens = max_seqs, max_tokens
        self.requests: dict[int, tuple[int, int]] = {}  # seq -> (prompt_len, max_new_tokens)
        self.waiting: list[int] = []
        self.running: list[int] = []
        self.generated: dict[int, int] = {}
        self.cached: dict[int, int] = {}
        self.finished: list[int] = []
        self.step = 0
        self.counts = {"preemptions": 0, "budget_stops": 0, "prefills": 0}

    @property
    def config(self) -> str:
        return (
            f"num_blocks={self.num_blocks}, block_size={self.block_size}, "
            f"max_seqs={self.max_seqs}, max_tokens={self.max_tokens}"
        )

    def arrive(self, seq: int, prompt_len: int, max_new_tokens: int) -> None:
        self.requests[seq] = (prompt_len, max_new_tokens)
        self.generated[seq] = 0
        self.waiting.append(seq)

    def done(self) -> bool:
        return len(self.finished) == len(self.requests)

    def prefill_tokens(self, seq: int) -> int:
        return self.requests[seq][0] + self.generated[seq]

    def describe(self, seq: int) -> str:
        p, m = self.requests[seq]
        return f"request {seq} (prompt {p}, {self.generated[seq]} of {m} tokens generated)"

    def state(self) -> str:
        held = {s: self.cached[s] for s in self.running}
        return f"running (oldest first, tokens in cache): {held}; waiting (front first): {self.waiting[:12]}"

    def fail(self, message: str, slug: str | None = None, hint: str | None = None) -> CheckFailure:
        text = f"step {self.step} ({self.config}): {message}"
        return MISCONCEPTIONS.failure(slug, text, hint) if slug else CheckFailure(text, hint=hint)

    def check(self, record: dict) -> None:
        """Check one step's record against the state so far, then move the state on."""
        prefill, decode = record["prefill"], record["decode"]
        preempted, finished = record["preempted"], record["finished"]
        before = self.state()
        running, n = self.running, len(self.running)
        # 1. decode: everyone running, but a suffix of preempted newest sequences
        for s in preempted:
            if s not in running:
                raise self.fail(f"sequence {s} was preempted but was not running. Before: {before}")
        if len(set(preempted)) != len(preempted):
            raise self.fail(f"preempted lists a sequence twice: {preempted}")
        newest = running[n - len(preempted) :]
        if set(preempted) != set(newest):
            spared = [s for s in newest if s not in preempted]
            slug = "preempts_oldest" if running and running[0] in preempted else None
            raise self.fail(
                f"preempted {preempted}, but the newest running sequences (admitted last) were {newest}: "
                f"{spared} should have gone first. Before: {before}",
                slug,
            )
        kept = running[: n - len(preempted)]
        if sorted(decode) != sorted(kept) or len(set(decode)) != len(decode):
            both = sorted(set(decode) & set(preempted))
            extra = f" ({both} decoded and preempted in the same step)" if both else ""
            raise self.fail(
                f"decode is {decode}{extra}: every running sequence that was not preempted, {kept}, decodes "
                f"one token per step. Before: {before}"
            )
        # 2. prefill: the front of the waiting queue, in a step that preempted nobody
        waiting = sorted(preempted, key=running.index) + self.waiting
        if prefill and preempted:
            raise self.fail(
                f"admitted {prefill} in a step that preempted {preempted}: a step that ran out of "
                f"blocks admits nobody. Before: {before}"
            )
        if prefill != waiting[: len(prefill)]:
            unknown = [s for s in prefill if s not in waiting]
            if unknown:
                raise self.fail(f"admitted {unknown}, which were not waiting. Before: {before}")
            raise self.fail(
                f"admitted {prefill}, but the waiting queue was {waiting[: len(prefill) + 3]} (front first): "
                "first come, first served admits from the front and stops at the first request that "
                f"does not fit. Before: {before}",
                "skips_the_queue",
            )
        if len(kept) + len(prefill) > self.max_seqs:
            raise self.fail(
                f"{len(kept) + len(prefill)} sequences running after admitting {prefill}: max_seqs is "
                f"{self.max_seqs}. Before: {before}"
            )
        # 3. the token budget
        tokens = len(decode) + sum(self.prefill_tokens(s) for s in prefill)
        if tokens > self.max_tokens:
            parts = " + ".join(f"{self.prefill_tokens(s)}" for s in prefill)
            raise self.fail(
                f"{len(decode)} decodes + prefills of {parts} tokens = {tokens} tokens in one step, over "
                f"max_tokens = {self.max_tokens}. Before: {before}",
                "ignores_token_budget",
            )
        if record["num_tokens"] != tokens:
            raise self.fail(
                f"Batch.num_tokens is {record['num_tokens']}, but {len(decode)} decodes and prefills of "
                f"{[self.prefill_tokens(s) for s in prefill]} tokens make {tokens}"
            )
        # 4. one token each; the finished
        for s in decode:
            self.cached[s] += 1
        for s in prefill:
            self.cached[s] = self.prefill_tokens(s)
        scheduled = [*decode, *prefill]
        for s in scheduled:
            self.generated[s] += 1
        done = [s for s in scheduled if self.generated[s] == self.requests[s][1]]
        if sorted(finished) != sorted(done):
            raise self.fail(
                f"finished is {finished}, expected {done}: a sequence finishes in the step that generates "
                f"its max_new_tokens-th token. Before: {before}"
            )
        # 5. the new state
        for s in preempted:
            del self.cached[s]
        self.waiting = waiting[len(prefill) :]
        self.running = [s for s in [*kept, *prefill] if s not in done]
        for s in done:
            del self.cached[s]
        self.finished.extend(done)
        self.counts["preemptions"] += len(preempted)
        self.counts["prefills"] += len(prefill)
        if self.waiting and not preempted and len(self.running) < self.max_seqs:
            if tokens + self.prefill_tokens(self.waiting[0]) > self.max_tokens:
                self.counts["budget_stops"] += 1
        self._check_blocks(record)
        self.step += 1

    def _check_blocks(self, record: dict) -> None:
        """The running sequences' tables, as the manager reports them after the step."""
        tables, bs = record["tables"], self.block_size
        if sorted(tables) != sorted(self.running):  # traced_steps follows the batches: they disagree
            raise self.fail(
                f"the batches say {sorted(self.running)} hold blocks, traced_steps found {sorted(tables)}"
            )
        owner: dict[int, int] = {}
        for s in self.running:
            table = tables[s]
            if table is None:
                raise self.fail(
                    f"sequence {s} runs, but block_table({s}) raises KeyError: were its blocks freed?"
                )
            want = blocks_for(self.cached[s], bs)
            if len(table) != want:
                slug = (
                    "extra_block_on_multiple" if len(table) == want + 1 and self.cached[s] % bs == 0 else None
                )
                raise self.fail(
                    f"sequence {s} holds {self.cached[s]} tokens in the cache, which fill {want} blocks of "
                    f"{bs}, but its block table is {table}",
                    slug,
                )
            for b in table:
                if not (isinstance(b, int) and 0 <= b < self.num_blocks):
                    raise self.fail(
                        f"block_table({s}) = {table} names block {b!r}: ids are 0 .. {self.num_blocks - 1}"
                    )
                if b in owner:
                    raise self.fail(
                        f"block {b} is in the tables of both sequence {owner[b]} and sequence {s}"
                    )
                owner[b] = s
        if record["num_free"] != self.num_blocks - len(owner):
            raise self.fail(
                f"num_free is {record['num_free']}, but the running sequences hold {len(owner)} of the "
                f"{self.num_blocks} blocks: {self.num_blocks - len(owner)} should be free (the blocks of "
                "finished or preempted sequences must be freed, each exactly once)"
            )
        refs = record.get("ref_counts")
        if refs is not None:
            wrong = [b for b in range(self.num_blocks) if refs[b] != (b in owner)]
            if wrong:
                b = wrong[0]
                raise self.fail(f"ref_count({b}) is {refs[b]}, but {1 if b in owner else 0} tables hold it")

    def check_finished(self) -> None:
        if not self.done():
            left = [s for s in self.requests if s not in set(self.finished)]
            raise self.fail(
                f"{len(left)} of {len(self.requests)} requests never finished, e.g. "
                f"{[self.describe(s) for s in left[:3]]}. {self.state()}",
                hint="every step must decode each running sequence (or preempt it), and admit from the "
                "waiting queue whenever the front request fits",
            )


def check_trace(
    trace: list[dict], requests: list[tuple[int, int, int, int]], checker: TraceChecker
) -> TraceChecker:
    """Check a ``simulate`` run of ``requests`` ((arrival_step, seq_id, prompt_len,
    max_new_tokens)) step by step with ``checker``, then that every request finished."""
    arrivals = sorted(requests, key=lambda r: r[0])
    arrived = 0
    if isinstance(trace, str):  # simulate(..., as_json=True); JSON's keys are strings
        trace = json.loads(trace)
        for record in trace:
            record["tables"] = {int(s): table for s, table in record["tables"].items()}
    if not isinstance(trace, list):
        raise CheckFailure(f"simulate() gave {type(trace).__name__}: keep the given simulate() as it is")
    for step, record in enumerate(trace):
        while arrived < len(arrivals) and arrivals[arrived][0] <= step:
            checker.arrive(*arrivals[arrived][1:])
            arrived += 1
        checker.check(record)
    while arrived < len(arrivals):
        checker.arrive(*arrivals[arrived][1:])
        arrived += 1
    checker.check_finished()
    return checker


def workload(
    seed: int, n_requests: int, *, max_prompt: int, max_new: int, burst: int = 8, gaps=(0, 0, 1, 1, 2)
) -> list[tuple[int, int, int, int]]:
    """A seeded request stream: ``burst`` requests at step 0, then arrival gaps drawn from
    ``gaps``; prompts in 1..max_prompt and outputs in 1..max_new tokens."""
    rng = np.random.default_rng(seed)
    out, step = [], 0
    for i in range(n_requests):
        if i >= burst:
            step += int(rng.choice(gaps))
        out.append((step, i, int(rng.integers(1, max_prompt + 1)), int(rng.integers(1, max_new + 1))))
    return out


# The serving setup of the public tests, the graders and the figure: 24 blocks of 4 slots
# for up to 6 sequences of up to 31 tokens: blocks run out often, and so does the budget.
SERVING = dict(num_blocks=24, block_size=4, max_seqs=6, max_tokens=32)
SERVING_REQUESTS = dict(max_prompt=16, max_new=16)


def scheduler_machine(impl, *, max_blocks: int = 12, max_block_size: int = 4, max_seqs: int = 4):
    """Hypothesis's stateful test of ``impl.Scheduler``: requests added and steps taken
    in random order, each step checked by a :class:`TraceChecker`; at the end the
    scheduler runs until every request has finished."""

    class SchedulerMachine(RuleBasedStateMachine):
        @initialize(
            num_blocks=st.integers(2, max_blocks),
            block_size=st.integers(1, max_block_size),
            seqs=st.integers(1, max_seqs),
            extra_tokens=st.integers(0, 12),
        )
        def start(self, num_blocks, block_size, seqs, extra_tokens):
            self.ok = False
            config = dict(
                num_blocks=num_blocks, block_size=block_size, max_seqs=seqs, max_tokens=seqs + extra_tokens
            )
            self.checker = TraceChecker(**config)
            manager = impl.BlockManager(num_blocks, block_size)
            self.scheduler = impl.Scheduler(config["max_seqs"], config["max_tokens"], manager)
            self.holding: list[int] = []
            self.ok = True

        @precondition(lambda self: getattr(self, "ok", False))
        @rule(data=st.data())
        def add(self, data):
            self.ok = False
            c = self.checker
            longest = data.draw(
                st.integers(1, min(c.max_tokens, c.num_blocks * c.block_size)), label="longest"
            )
            prompt = data.draw(st.integers(1, longest), label="prompt_len")
            seq = len(c.requests)
            with pipelined(impl):
                self.scheduler.add(impl.Request(seq, prompt, longest - prompt + 1))
            c.arrive(seq, prompt, longest - prompt + 1)
            self.ok = True

        @precondition(lambda self: getattr(self, "ok", False))
        @rule(times=st.integers(1, 3))
        def step(self, times):
            self.ok = False
            self._steps(times)
            self.ok = True

        def _steps(self, n, until_idle=False):
            for record in impl.traced_steps(self.scheduler, self.holding, n, until_idle):
                self.checker.check(record)
                self.holding = list(record["tables"])

        def teardown(self):
            if not getattr(self, "ok", False):
                return
            bound = 2 * sum(p + m for p, m in self.checker.requests.values()) + 5
            self._steps(bound, until_idle=True)  # one call: the rest of the run
            self.checker.check_finished()

    return SchedulerMachine


# --- misconceptions: what each known mistake looks like ------------------------------------

MISCONCEPTIONS = Misconceptions(
    "exercises/section7/README.md",
    Misconception(
        "extra_block_on_multiple",
        "one block too many when the length fills its blocks exactly",
        "n tokens occupy ceil(n / block_size) blocks, -(-n // block_size): n // block_size + 1 "
        "adds an empty block whenever n is a multiple of block_size",
        readme="7.5 — Counting blocks",
        variants={"blocks_for": lambda n, block_size: n // block_size + 1},
    ),
    Misconception(
        "shared_block_freed_early",
        "a shared block freed while another sequence holds it",
        "free() drops one reference per block, and a block goes back to the free pool only when its "
        "count reaches 0: else the next allocation overwrites what a forked sequence still reads",
        readme="7.5 — Sharing blocks: reference counts and copy on write",
    ),
    Misconception(
        "no_copy_on_write",
        "a token appended into a shared block",
        "when the last block is not full and its reference count is above 1, the new token goes into a "
        "fresh copy: take a free block, swap it into this table only, and return (src, dst)",
        readme="7.5 — Sharing blocks: reference counts and copy on write",
    ),
    Misconception(
        "reads_past_context_len",
        "slots past context_len attended",
        "a sequence's last block is only partly filled: token t of sequence s is visible iff "
        "t < context_lens[s], so mask slots, not whole blocks",
        readme="7.5 — Reading through the block table",
        variants={
            "paged_attention": lambda q, k, v, tables, lens, scale=None: gathered_attention(
                q, k, v, tables, lens, scale, whole_blocks=True
            )
        },
    ),
    Misconception(
        "preempts_oldest",
        "the oldest sequence preempted",
        "when blocks run out, preempt the newest running sequence (the last admitted): it has the least "
        "to recompute, and the oldest keeps making progress; preempting the oldest can starve it",
        readme="7.5 — Preemption and recompute",
    ),
    Misconception(
        "ignores_token_budget",
        "prefills admitted beyond max_tokens",
        "a step computes its decodes (1 token each) plus each prefill's prompt_len + generated tokens: "
        "stop admitting at the first request that would take the step past max_tokens",
        readme="7.5 — The step: decode, then first come, first served",
    ),
    Misconception(
        "skips_the_queue",
        "a later request admitted past one that does not fit",
        "first come, first served: admit from the front of the waiting queue and stop at the first "
        "request that does not fit; skipping it lets short requests starve long ones",
        readme="7.5 — The step: decode, then first come, first served",
    ),
    Misconception(
        "loop_over_sequences",
        "a Python loop over the sequences",
        "gather every sequence's blocks at once (index the cache with the whole block table) and "
        "mask by context length: one batched attention, not S small ones",
        readme="7.5 — Speed",
        kind="speed",
    ),
)


# --- the figure: block occupancy over a simulated workload ---------------------------------


def figure(impl) -> Figure:
    """``impl.simulate`` on a seeded workload: which sequence owns each physical block
    at each step, and the blocks, sequences and tokens in use, with the preemptions."""
    config = dict(num_blocks=32, block_size=4, max_seqs=8, max_tokens=48)
    requests = workload(2, 36, max_prompt=20, max_new=24, burst=10, gaps=(0, 1, 1, 2, 3))
    trace = impl.simulate(requests, **config)
    steps, n_blocks = len(trace), config["num_blocks"]
    owner = np.full((n_blocks, steps), np.nan)
    for t, record in enumerate(trace):
        for seq, table in record["tables"].items():
            for b in table or []:
                if 0 <= b < n_blocks:
                    owner[b, t] = seq
    fig, _ = new_figure(10.0, 5.6)
    fig.clear()
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
    cmap = _owner_colours()
    colour = np.mod(owner * 7, 20)  # neighbouring ids get distant colours
    top.imshow(colour, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=20)
    top.set_ylabel("physical block")
    top.set_title(
        f"Block ownership ({n_blocks} blocks of {config['block_size']} slots; "
        "colour = owning sequence, white = free)",
        fontsize=10,
    )
    used = [n_blocks - r["num_free"] for r in trace]
    running = [len(r["tables"]) for r in trace]
    tokens = [r["num_tokens"] for r in trace]
    x = np.arange(steps)
    bottom.plot(x, used, label=f"blocks in use (of {n_blocks})", color="tab:blue")
    bottom.plot(x, tokens, label=f"tokens computed (max {config['max_tokens']})", color="tab:green", lw=0.8)
    seqs_axis = bottom.twinx()
    seqs_axis.step(x, running, where="mid", color="tab:orange", lw=0.8)
    seqs_axis.set_ylim(0, config["max_seqs"] + 0.5)
    seqs_axis.set_ylabel("running (orange)", fontsize=8)
    preempt = [t for t, r in enumerate(trace) if r["preempted"]]
    for t in preempt:
        top.axvline(t, color="red", lw=0.6, alpha=0.6)
        bottom.axvline(t, color="red", lw=0.6, alpha=0.6)
    bottom.axhline(n_blocks, color="gray", ls=":", lw=0.8)
    bottom.set_xlabel("step")
    bottom.legend(fontsize=7, loc="lower left", ncols=2)
    n_pre = sum(len(r["preempted"]) for r in trace)
    caption = (
        f"Your scheduler and block manager serving {len(requests)} requests in {steps} steps: the owner of "
        f"each block over time, and blocks, sequences and tokens per step; red lines mark the steps "
        f"that preempted ({n_pre} preemption{'s' if n_pre != 1 else ''} in {len(preempt)} steps)"
    )
    return png(fig), caption


def _owner_colours():
    """20 distinct colours for the sequences (their ids modulo 20); free blocks white."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(colormaps["tab20"](np.linspace(0, 1, 20)))
    cmap.set_bad("white")
    return cmap


def speed_inputs(seed: int, *, n_seqs: int, heads: int, dim: int, block_size: int, max_len: int):
    """Paged inputs for a timing, and the same keys and values laid out contiguously,
    padded to the longest context: ``(paged args, (q4, keys, values, mask))`` for
    ``F.scaled_dot_product_attention(q4, keys, values, attn_mask=mask)``."""
    rng = Draw(seed)
    lens = [int(x) for x in rng.integers(max(1, max_len // 2), max_len + 1, size=n_seqs)]
    case = dict(
        heads=heads, dim=dim, block_size=block_size, lens=lens, extra_columns=0, spare_blocks=2,
        dtype=torch.float32, scale=None, seed=seed,
    )  # fmt: skip
    q, k_cache, v_cache, tables, context_lens, _ = paged_inputs(case)
    width = tables.shape[1] * block_size
    t = torch.arange(width)
    rows = tables.clamp(min=0)[:, t // block_size]  # (S, width)
    keys = k_cache[rows, t % block_size].transpose(1, 2).contiguous()  # (S, H, width, D)
    values = v_cache[rows, t % block_size].transpose(1, 2).contiguous()
    mask = (t[None, :] < context_lens[:, None])[:, None, None, :]
    return (q, k_cache, v_cache, tables, context_lens), (q[:, :, None, :], keys, values, mask)


def contiguous_attention(q4, keys, values, mask) -> torch.Tensor:
    """The speed baseline: torch's SDPA on contiguous, padded (S, H, L, D) keys and values."""
    return F.scaled_dot_product_attention(q4, keys, values, attn_mask=mask)[:, :, 0, :]


def check_paged_attention(impl, case) -> None:
    """``paged_attention`` on ``case`` (:func:`paged_case`) against gather-then-SDPA, its
    inputs left unchanged."""
    args = paged_inputs(case)
    with unchanged(*args[:5], names=["q", "k_cache", "v_cache", "block_tables", "context_lens"]):
        out = impl.paged_attention(*args)
    assert_close(
        out,
        gathered_attention(*args),
        name=describe_paged(case),
        suspects=MISCONCEPTIONS.on("paged_attention", *args),
    )
