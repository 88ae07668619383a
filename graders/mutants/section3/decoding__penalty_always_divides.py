"""Mutant: the repetition penalty divides every seen logit by the penalty, negative ones too.

Misconception: "divide by the penalty to make the token less likely" holds only for a
positive logit; -2 / 1.5 = -1.33 is LARGER than -2, so a disliked token that already
occurred becomes more likely. Negative logits must be multiplied.
"""


def repetition_penalty(logits, input_ids, penalty):
    if not penalty > 0:
        raise ValueError(f"repetition penalty must be > 0, got {penalty}")
    input_ids = torch.as_tensor(input_ids, dtype=torch.long)
    return logits.scatter(-1, input_ids, logits.gather(-1, input_ids) / penalty)
