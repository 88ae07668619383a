"""Mutant: generate applies the temperature after top-k and top-p, just before sampling.

Misconception: temperature is "part of the softmax", so it goes last; but top-p measures
probability mass, and the mass of the untempered distribution is not the mass of the
tempered one: the nucleus comes out too small (t > 1) or too large (t < 1).
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
    generator = _as_generator(generator)
    for _ in range(max_new_tokens):
        logits = step_fn(ids)
        if repetition_penalty != 1.0:
            logits = _repetition_penalty(logits, ids, repetition_penalty)
        if top_k is not None:
            logits = top_k_filter(logits, top_k)
        if top_p is not None:
            logits = top_p_filter(logits, top_p)
        logits = apply_temperature(logits, temperature)
        ids = torch.cat([ids, sample(logits, generator)[:, None]], dim=1)
    return ids
