"""Mutant: the prompt's tokens stay in the labels; only the padding is masked.

Misconception: "labels = input_ids" is how a plain language model is trained, and
copying it for SFT looks natural. The model then spends its capacity learning to
write prompts (and is rewarded for predicting the user's words) instead of answers.
"""


def sft_labels(prompt_ids, response_ids, ignore_index=-100, pad_id=0):
    if len(prompt_ids) != len(response_ids):
        raise ValueError("prompts and responses come in pairs")
    rows = [torch.cat([_ids(p), _ids(r)]) for p, r in zip(prompt_ids, response_ids)]
    length = max((len(row) for row in rows), default=0)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), length), ignore_index, dtype=torch.long)
    for b, row in enumerate(rows):
        input_ids[b, : len(row)] = row
        labels[b, : len(row)] = row
    return input_ids, labels
