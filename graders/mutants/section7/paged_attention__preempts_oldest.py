"""Mutant: when the blocks run out, the scheduler preempts the oldest running sequence.

Misconception: the oldest sequence has held its blocks longest, so it should give
them up. It also has the most tokens to recompute, and it is the one closest to
finishing and freeing everything it holds; preempting it can starve it for ever.
vLLM preempts the newest.
"""


def _preempt(self, batch):
    victim = self.running.pop(0)
    self.block_manager.free(victim.seq_id)
    self.waiting.appendleft(victim)
    batch.preempted.append(victim.seq_id)
    return victim


Scheduler._preempt = _preempt  # noqa: F821 - the reference's class
