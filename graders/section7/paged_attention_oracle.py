"""Checks of exercise 7.5's scheduler that only the hidden graders run.

The support module's :class:`TraceChecker` holds every step to the invariants (no
block owned twice, the free count, the token budget, the newest preempted, first come
first served, every request finished). :class:`StrictTraceChecker` adds the two
rules that pin each step down completely, which a checker shipped to learners would
have to compute the way a scheduler does:

* preemption is minimal: a step preempts only as many of the newest sequences as
  the decodes of the others need blocks for;
* admission is maximal: in a step that preempted nobody, the front request that was
  left waiting either did not fit the tokens left, or the free blocks, or max_seqs.
"""

from __future__ import annotations

from llmkit.testing import load_support

support = load_support("7.5")
blocks_for = support.blocks_for


class StrictTraceChecker(support.TraceChecker):
    def check(self, record: dict) -> None:
        running = list(self.running)
        cached = dict(self.cached)
        queue = list(self.waiting)
        generated = dict(self.generated)
        before = self.state()
        super().check(record)  # the invariants first: their messages name the known mistakes
        bs, n = self.block_size, len(running)
        step = self.step - 1
        held = [blocks_for(cached[s], bs) for s in running]
        needs = [int(cached[s] % bs == 0) for s in running]
        free = self.num_blocks - sum(held)
        k = 0  # the fewest newest sequences whose blocks let all the older ones decode
        while sum(needs[: n - k]) > free + sum(held[n - k :]):
            k += 1
        preempted = record["preempted"]
        if len(preempted) != k:
            fewer = "no sequence" if k == 0 else f"only {running[n - k :]}"
            raise support.CheckFailure(
                f"step {step} ({self.config}): preempted {preempted}, but {fewer} had to go: "
                f"{sum(needs[: n - k])} of the older sequences needed a new block and {free} were free "
                f"(with {k} preempted: {free + sum(held[n - k :])}). Before: {before}",
                hint="preempt only while the sequence being decoded cannot get its block "
                "(can_append is False), one newest sequence at a time",
            )
        if preempted:
            return
        prefill = record["prefill"]
        kept = running
        admitted_running = len(kept) + len(prefill)
        rest = queue[len(prefill) :]
        if not rest or admitted_running >= self.max_seqs:
            return
        nxt = rest[0]
        need = self.requests[nxt][0] + generated[nxt]
        tokens_left = self.max_tokens - record["num_tokens"]
        used = sum(blocks_for(cached[s] + 1, bs) for s in kept)
        used += sum(blocks_for(self.requests[s][0] + generated[s], bs) for s in prefill)
        free_now = self.num_blocks - used
        if need <= tokens_left and blocks_for(need, bs) <= free_now:
            raise support.CheckFailure(
                f"step {step} ({self.config}): request {nxt} was at the front of the waiting queue and "
                f"fit: its prefill of {need} tokens in {blocks_for(need, bs)} blocks, with {tokens_left} "
                f"tokens of the budget left, {free_now} blocks free and {admitted_running} of "
                f"{self.max_seqs} sequences running; it was not admitted. Before: {before}",
                hint="keep admitting from the front of the queue until a request does not fit the "
                "tokens left, the free blocks (can_allocate) or max_seqs",
            )
