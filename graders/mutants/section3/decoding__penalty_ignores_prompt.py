"""Mutant: generate penalises only the tokens it generated, not the prompt's.

Misconception: "repetition" sounds like the model repeating itself, so only its own
output is passed to the penalty; transformers (and this exercise) penalise every token
of the sequence so far, prompt included.
"""


def generate(
    step_fn,
    prompt_ids,
    max_new_tokens,
    temperature=1.0,
    top_k=None,
    top_p=None,
    repetition_penalty=1.0,
    generator=None,
):
    ids = torch.as_tensor(prompt_ids, dtype=torch.long).clone()
    start = ids.shape[1]
    generator = _as_generator(generator)
    for _ in range(max_new_tokens):
        logits = step_fn(ids)
        if repetition_penalty != 1.0:
            logits = _repetition_penalty(logits, ids[:, start:], repetition_penalty)
        logits = apply_temperature(logits, temperature)
        if top_k is not None:
            logits = top_k_filter(logits, top_k)
        if top_p is not None:
            logits = top_p_filter(logits, top_p)
        ids = torch.cat([ids, sample(logits, generator)[:, None]], dim=1)
    return ids
