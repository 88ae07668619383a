"""Mutant: the repetition penalty is applied again for every occurrence of an id.

Misconception: walking over the sequence and penalising each token seen looks like the
definition, but an id that occurs five times is then divided by penalty ** 5; transformers
penalises each distinct id once.
"""


def repetition_penalty(logits, input_ids, penalty):
    if not penalty > 0:
        raise ValueError(f"repetition penalty must be > 0, got {penalty}")
    input_ids = torch.as_tensor(input_ids, dtype=torch.long)
    out = logits.clone()
    for j in range(input_ids.shape[-1]):
        column = input_ids[..., j : j + 1]
        seen = out.gather(-1, column)
        out = out.scatter(-1, column, torch.where(seen < 0, seen * penalty, seen / penalty))
    return out
