"""Public tests for exercise 7.5 (paged KV cache and continuous batching). Run:

    pytest exercises/section7/test_paged_attention.py      (or: llmkit check 7.5)

The block manager is driven operation by operation and checked after each one
(fresh blocks, block tables, reference counts, the free count); the scheduler runs
whole workloads through the given ``simulate`` and every step is checked (token
budget, preemption of the newest, first come first served, no block owned twice,
every request finished); both also run under hypothesis's stateful testing, a few
short random programs each. ``paged_attention`` is compared with gather-then-SDPA.
"""

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis.stateful import run_state_machine_as_test

from llmkit.testing import load_support

pytestmark = pytest.mark.exercise("7.5")
support = load_support("7.5")
mistakes = support.MISCONCEPTIONS

# --- the block manager -----------------------------------------------------------------


def test_allocate_takes_ceil_blocks(impl):
    checker = support.ManagerChecker(impl, 12, 4)
    for seq, n in enumerate([4, 5, 0, 1, 8]):  # 1 + 2 + 0 + 1 + 2 blocks of 4 slots
        checker.allocate(seq, n)
    checker.allocate(5, 24)  # the 6 blocks left, exactly
    checker.allocate(6, 1)  # none left: OutOfBlocksError, nothing changed
    checker.check_tokens()


def test_append_grows_and_copies_on_write(impl):
    checker = support.ManagerChecker(impl, 10, 4)
    checker.allocate(0, 3)
    checker.append(0)  # fills the block's last slot
    checker.append(0)  # a new block
    checker.fork(0, 1)  # 1 shares both blocks; the last one holds 1 token
    checker.append(1)  # copy on write: (src, dst)
    checker.append(0)  # 0's last block is its own again: no copy
    checker.allocate(2, 4)
    checker.fork(2, 3)
    checker.append(3)  # the shared last block is full: a new block, nothing to copy
    checker.check_tokens()


def test_free_drops_one_reference(impl):
    checker = support.ManagerChecker(impl, 6, 2)
    checker.allocate(0, 5)
    checker.fork(0, 1)
    checker.fork(1, 2)
    checker.free(0)  # 1 and 2 still hold every block
    checker.free(2)
    checker.free(1)
    checker.allocate(3, 12)  # all six blocks are free again


def test_refused_operations_change_nothing(impl):
    checker = support.ManagerChecker(impl, 3, 2)
    checker.allocate(0, 4)
    checker.misuse("unknown", 9)  # KeyError from append, free, block_table, num_tokens, fork
    checker.misuse("taken", 0)  # ValueError from allocate and fork onto a live id
    checker.allocate(1, 3)  # 2 blocks needed, 1 free: OutOfBlocksError
    checker.fork(0, 2)
    checker.append(2)  # the shared block is full: takes the last free block
    checker.append(0)  # needs a block, none is free: OutOfBlocksError


def test_block_manager_stateful(impl):
    run_state_machine_as_test(
        support.manager_machine(impl), settings=settings(max_examples=8, stateful_step_count=10)
    )


# --- paged attention ---------------------------------------------------------------------

EDGE = dict(
    heads=2, dim=3, block_size=4, lens=[4, 1, 7, 9], extra_columns=1, spare_blocks=2,
    dtype=torch.float64, scale=None, seed=1,
)  # fmt: skip


@settings(max_examples=10)
@given(case=support.paged_case())
@example(case=EDGE)
@example(case={**EDGE, "block_size": 1, "lens": [3, 1], "dtype": torch.float32, "scale": 0.3})
def test_paged_attention_matches_gathered_sdpa(impl, case):
    support.check_paged_attention(impl, case)


# --- the scheduler -----------------------------------------------------------------------


def test_add_refuses_requests_that_cannot_run(impl):
    scheduler = impl.Scheduler(2, 8, impl.BlockManager(4, 2))
    batch = scheduler.step()
    assert (batch.prefill, batch.decode, batch.preempted, batch.finished) == ([], [], [], []), (
        "a step with nothing to do returns an empty Batch"
    )
    scheduler.add(impl.Request(0, 5, 4))  # its largest prefill, 8 tokens in 4 blocks, just fits
    for request, why in [
        (impl.Request(1, 9, 1), "a 9-token prompt is over max_tokens = 8"),
        (impl.Request(2, 6, 4), "a preempted request would recompute 9 tokens, over max_tokens = 8"),
        (impl.Request(3, 0, 2), "an empty prompt"),
        (impl.Request(4, 2, 0), "max_new_tokens = 0"),
        (impl.Request(0, 1, 1), "seq_id 0 was added before"),
    ]:
        with pytest.raises(ValueError):
            scheduler.add(request)
            pytest.fail(f"add({request}) accepted, but {why}: expected ValueError")
    with pytest.raises(ValueError):
        impl.Scheduler(3, 2, impl.BlockManager(4, 2))
        pytest.fail("Scheduler(max_seqs=3, max_tokens=2) accepted: three decodes need 3 tokens")


def test_blocks_run_out_the_newest_is_preempted(impl):
    # Step 0 admits all three (4 blocks of 2 slots, all used); in step 1 sequence 1
    # needs a block: 2, the newest, is preempted and recomputed later.
    requests = [(0, 0, 3, 4), (0, 1, 2, 4), (0, 2, 2, 4)]
    config = dict(num_blocks=4, block_size=2, max_seqs=3, max_tokens=16)
    trace = impl.simulate(requests, **config, max_steps=200)
    support.check_trace(trace, requests, support.TraceChecker(**config))


def test_scheduler_serves_a_workload(impl):
    requests = support.workload(0, 60, **support.SERVING_REQUESTS)
    trace = impl.simulate(requests, **support.SERVING, max_steps=3000)
    support.check_trace(trace, requests, support.TraceChecker(**support.SERVING))


def test_scheduler_stateful(impl):
    run_state_machine_as_test(
        support.scheduler_machine(impl), settings=settings(max_examples=10, stateful_step_count=10)
    )
