"""Mutant: generate_greedy runs the whole sequence again for every new token, cache or not.

Misconception: the cache is an optimisation inside attention, so generation can stay
as it is. Without feeding only the newest token, nothing is saved: every step costs a
full forward pass over the sequence so far.
"""

_generate_with_cache = generate_greedy


def generate_greedy(model, prompt_ids, max_new_tokens, use_cache=True):
    return _generate_with_cache(model, prompt_ids, max_new_tokens, use_cache=False)  # the bug
