"""Mutant: a request that does not fit is passed over, and later, smaller ones are
admitted in its place.

Misconception: filling the budget is better than leaving it unused. It is not first
come, first served: a long request can be passed over step after step while short
ones keep arriving, and it starves.
"""

REFERENCE_PATCH = [
    (
        """        while not batch.preempted and self.waiting and len(self.running) < self.max_seqs:
            seq = self.waiting[0]  # first come, first served: never skip ahead
            need = seq.prompt_len + self.generated[seq.seq_id]
            if batch.num_tokens + need > self.max_tokens or not manager.can_allocate(need):
                break
            self.waiting.popleft()""",
        """        for seq in list(self.waiting):
            if batch.preempted or len(self.running) >= self.max_seqs:
                break
            need = seq.prompt_len + self.generated[seq.seq_id]
            if batch.num_tokens + need > self.max_tokens or not manager.can_allocate(need):
                continue
            self.waiting.remove(seq)""",
    )
]
