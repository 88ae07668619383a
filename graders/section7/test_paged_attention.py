"""Hidden graders for exercise 7.5 (paged KV cache and continuous batching): 25 points.

Oracles: gather-then-SDPA for ``paged_attention`` (the support module's
``gathered_attention``: token-by-token gathers and torch's
``F.scaled_dot_product_attention``); for the block manager, the docstring's rules
checked after every operation (``ManagerChecker``); for the scheduler, every step of
a run checked against the invariants (``TraceChecker``) and, here only, against the
minimal-preemption and maximal-admission rules (``paged_attention_oracle``). Under
``llmkit grade`` the learner's objects live in a sandboxed worker: the manager's state
comes back through the stub's ``snapshot`` and a whole simulated workload through one
``simulate`` call, so a 1,000-request run costs one round trip.
"""

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from llmkit.testing import SEEDS, assert_close, assert_speed, load_oracle, load_support

pytestmark = pytest.mark.exercise("7.5")
support = load_support("7.5")
oracle = load_oracle("7.5")
mistakes = support.MISCONCEPTIONS


def strict(**config):
    return oracle.StrictTraceChecker(**config)


# --- the block manager (9 points) ------------------------------------------------------


@pytest.mark.points(1)
@settings(max_examples=15)
@given(
    num_blocks=st.integers(1, 20),
    block_size=st.integers(1, 6),
    lengths=st.lists(st.integers(0, 30), min_size=1, max_size=10),
)
@example(num_blocks=6, block_size=3, lengths=[3, 6, 9, 1])  # multiples of the block size, then full
def test_allocate_takes_ceil_blocks(impl, num_blocks, block_size, lengths):
    checker = support.ManagerChecker(impl, num_blocks, block_size)
    for seq, n in enumerate(lengths):
        checker.allocate(seq, n)  # OutOfBlocksError, changing nothing, once they no longer fit
    checker.check_tokens()


@pytest.mark.points(2)
def test_append_and_copy_on_write(impl):
    for block_size in [1, 2, 3, 5]:
        append_and_copy_on_write(impl, block_size)


def append_and_copy_on_write(impl, block_size):
    checker = support.ManagerChecker(impl, 16, block_size)
    checker.allocate(0, block_size + 1)  # the last block holds one token (all of it when block_size = 1)
    checker.fork(0, 1)
    checker.fork(0, 2)  # three sequences on the same blocks
    for seq in (1, 0, 2, 0, 1, 1):  # copies on write while the last block is shared and not full
        checker.append(seq)
    for _ in range(block_size + 1):  # fill sequence 2's block, then cross into a new one
        checker.append(2)
    checker.allocate(3, 2 * block_size)  # full blocks shared: appending takes a new block, no copy
    checker.fork(3, 4)
    checker.append(4)
    checker.append(3)
    checker.check_tokens()


@pytest.mark.points(2)
def test_fork_and_free_count_references(impl):
    for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]]:
        checker = support.ManagerChecker(impl, 9, 3)
        checker.allocate(0, 7)  # 3 blocks
        checker.fork(0, 1)
        checker.fork(1, 2)
        checker.append(2)  # 2's last block is copied: 4 of 9 blocks in use
        checker.fork(2, 3)
        for seq in order:
            checker.free(seq)
        checker.allocate(4, 27)  # every block is free again


@pytest.mark.points(1)
def test_refused_operations_change_nothing(impl):
    checker = support.ManagerChecker(impl, 4, 3)
    checker.allocate(0, 6)
    checker.misuse("unknown", 5)
    checker.misuse("taken", 0)
    checker.fork(0, 1)
    checker.free(0)
    checker.misuse("unknown", 0)  # freed: unknown again
    checker.allocate(2, 7)  # 3 blocks needed, 2 free
    checker.allocate(2, 6)
    checker.append(2)  # full, no block free
    checker.append(1)
    for bad in [(0, 4), (3, 0), (-1, 2)]:
        with pytest.raises(ValueError):
            impl.BlockManager(*bad)
            pytest.fail(f"BlockManager{bad} accepted: num_blocks and block_size must be >= 1")


# --- paged attention (7 points) ------------------------------------------------------------


@pytest.mark.points(3)
@settings(max_examples=40)
@given(case=support.paged_case(max_seqs=6, max_len=40))
def test_paged_attention_matches_gathered_sdpa(impl, case):
    support.check_paged_attention(impl, case)


EDGES = {
    "every context one token": dict(lens=[1, 1, 1], block_size=4),
    "lengths filling whole blocks": dict(lens=[4, 8, 12], block_size=4),
    "block size 1": dict(lens=[5, 1, 3], block_size=1),
    "blocks larger than any sequence": dict(lens=[3, 7, 1], block_size=16),
    "one long sequence among short ones": dict(lens=[61, 2, 1], block_size=4),
    "wide padding": dict(lens=[2, 3], block_size=2, extra_columns=6),
}


@pytest.mark.points(2)
def test_paged_attention_edges(impl, draw):
    for name, dtype in [(name, dtype) for name in EDGES for dtype in (torch.float32, torch.float64)]:
        case = dict(heads=3, dim=8, extra_columns=1, spare_blocks=3, dtype=dtype, scale=None, seed=draw.seed)
        case.update(EDGES[name])
        args = list(support.paged_inputs(case))
        if name == "block size 1":
            args[3] = args[3].to(torch.int32)  # int32 block tables are allowed too
            args[5] = 0.7
        assert_close(
            impl.paged_attention(*args),
            support.gathered_attention(*args),
            name=f"{support.describe_paged({**case, 'scale': args[5]})} ({name})",
            suspects=mistakes.on("paged_attention", *args),
        )


# Many short sequences: a Python loop over them measured 30-40x the contiguous SDPA's time,
# the reference 1.6-2.0x, gathering with k_cache[block_tables] and SDPA 2.0-2.5x, that
# gather with a hand-written softmax 3.8-4.2x (CPU time, fresh inputs; benchmarks/NOTES.md).
SPEED = dict(n_seqs=64, heads=2, dim=16, block_size=4, max_len=16)


@pytest.mark.points(2)
@pytest.mark.speed
def test_paged_attention_speed(impl, draw, record_metric):
    contiguous = {}

    def make(i):
        paged, flat = support.speed_inputs(draw.seed + i, **SPEED)
        contiguous[paged[0].numpy().tobytes()] = flat
        return paged

    def contiguous_sdpa(q, k_cache, v_cache, block_tables, context_lens):
        return support.contiguous_attention(*contiguous[q.numpy().tobytes()])

    assert_speed(
        impl.paged_attention,
        contiguous_sdpa,
        make,
        limit=6.0,
        what=f"paged_attention over {SPEED['n_seqs']} sequences of up to {SPEED['max_len']} tokens "
        f"(H={SPEED['heads']}, D={SPEED['dim']}, block_size={SPEED['block_size']})",
        baseline_name="torch's SDPA on contiguous keys and values",
        hint="gather all sequences' blocks at once (index the cache with the whole block table) and "
        "mask by context length: one batched attention, no Python loop over the sequences",
        record_metric=record_metric,
        repeats=11,  # on a busy machine single timings of either side vary 2x: a median of many
        number=10,  # each timing several milliseconds long
    )


# --- the scheduler (9 points) --------------------------------------------------------------


@pytest.mark.points(1)
def test_add_refuses_requests_that_cannot_run(impl):
    scheduler = impl.Scheduler(3, 10, impl.BlockManager(3, 3))
    scheduler.add(impl.Request(7, 4, 6))  # 9 tokens, 3 blocks: fits both
    for request, why in [
        (impl.Request(1, 11, 1), "an 11-token prompt is over max_tokens = 10"),
        (impl.Request(2, 5, 6), "a recompute of 10 tokens needs 4 blocks of 3, and there are 3"),
        (impl.Request(3, -1, 2), "a negative prompt"),
        (impl.Request(4, 2, 0), "max_new_tokens = 0"),
        (impl.Request(7, 1, 1), "seq_id 7 was added before"),
    ]:
        with pytest.raises(ValueError):
            scheduler.add(request)
            pytest.fail(f"add({request}) accepted, but {why}: expected ValueError")
    for bad in [(0, 4), (5, 4)]:
        with pytest.raises(ValueError):
            impl.Scheduler(*bad, impl.BlockManager(3, 3))
            pytest.fail(f"Scheduler(max_seqs={bad[0]}, max_tokens={bad[1]}) accepted")


SCENARIOS = {
    # (config, requests as (arrival, seq_id, prompt_len, max_new_tokens))
    "the budget stops the queue": (
        dict(num_blocks=40, block_size=4, max_seqs=8, max_tokens=32),
        [(0, 0, 10, 5), (0, 1, 30, 2), (0, 2, 2, 3), (1, 3, 1, 1), (6, 4, 20, 4)],
    ),
    "preemption chain, recompute": (
        dict(num_blocks=6, block_size=2, max_seqs=4, max_tokens=20),
        [(0, 0, 3, 6), (0, 1, 2, 6), (0, 2, 2, 6), (0, 3, 1, 7), (2, 4, 4, 2)],
    ),
    "one sequence at a time": (
        dict(num_blocks=5, block_size=3, max_seqs=1, max_tokens=15),
        [(0, s, 1 + 2 * s, 5 - s) for s in range(5)],
    ),
    "block size 1": (
        dict(num_blocks=10, block_size=1, max_seqs=3, max_tokens=12),
        [(s // 2, s, 1 + s % 4, 3 + s % 5) for s in range(9)],
    ),
    "one block each": (
        dict(num_blocks=3, block_size=16, max_seqs=4, max_tokens=16),
        [(0, s, 4 + s, 12 - s) for s in range(6)],
    ),
}


@pytest.mark.points(2)
def test_small_workloads_step_by_step(impl):
    for name, (config, requests) in SCENARIOS.items():
        trace = impl.simulate(requests, **config, max_steps=500, as_json=True)
        try:
            support.check_trace(trace, requests, strict(**config))
        except support.CheckFailure as failure:
            raise support.CheckFailure(f"workload {name!r}, requests {requests}:\n{failure}") from None


@pytest.mark.points(3)
def test_thousand_requests(impl, draw):
    """1,000 requests against 24 blocks of 4 slots: hundreds of preemptions and budget stops."""
    requests = support.workload(draw.seed, 1000, **support.SERVING_REQUESTS)
    trace = impl.simulate(requests, **support.SERVING, max_steps=20_000, as_json=True)
    support.check_trace(trace, requests, strict(**support.SERVING))


@pytest.mark.points(1)
@settings(max_examples=3)
@given(seed=SEEDS, block_size=st.sampled_from([1, 2, 8]), max_seqs=st.integers(1, 12))
def test_random_workloads(impl, seed, block_size, max_seqs):
    config = dict(
        num_blocks=96 // block_size, block_size=block_size, max_seqs=max_seqs, max_tokens=max_seqs + 40
    )
    requests = support.workload(seed, 300, max_prompt=24, max_new=16, burst=20, gaps=(0, 0, 0, 1))
    trace = impl.simulate(requests, **config, max_steps=20_000, as_json=True)
    support.check_trace(trace, requests, strict(**config))


# --- stateful testing (5 points): last, as the slowest under the sandbox ----------------------


@pytest.mark.points(3)
def test_block_manager_stateful(impl):
    run_state_machine_as_test(
        support.manager_machine(impl, max_blocks=14, max_tokens=20),
        settings=settings(max_examples=25, stateful_step_count=20),
    )


@pytest.mark.points(2)
def test_scheduler_stateful(impl):
    run_state_machine_as_test(
        support.scheduler_machine(impl, max_blocks=16, max_seqs=5),
        settings=settings(max_examples=15, stateful_step_count=15),
    )
