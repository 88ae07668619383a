"""Mutant: prefills are admitted while blocks and max_seqs allow, whatever their tokens.

Misconception: the blocks are the scarce resource, so fitting in the cache is enough.
The token budget bounds the work of one step (its latency, and the activations the
forward pass holds): a step of long prefills stalls every running sequence's decode.
"""

REFERENCE_PATCH = [
    (
        "if batch.num_tokens + need > self.max_tokens or not manager.can_allocate(need):",
        "if not manager.can_allocate(need):",
    )
]
