"""Mutant: labels start as a copy of input_ids and only the prompt is masked, so the
padding keeps pad_id as its label.

Misconception: "the padding is ignored anyway" — but only attention masks ignore it;
the loss counts every label that is not ignore_index, and the model learns to emit
padding after every answer.
"""


def sft_labels(prompt_ids, response_ids, ignore_index=-100, pad_id=0):
    if len(prompt_ids) != len(response_ids):
        raise ValueError("prompts and responses come in pairs")
    pairs = [(_ids(p), _ids(r)) for p, r in zip(prompt_ids, response_ids)]
    length = max((len(p) + len(r) for p, r in pairs), default=0)
    input_ids = torch.full((len(pairs), length), pad_id, dtype=torch.long)
    for b, (p, r) in enumerate(pairs):
        input_ids[b, : len(p) + len(r)] = torch.cat([p, r])
    labels = input_ids.clone()
    for b, (p, _) in enumerate(pairs):
        labels[b, : len(p)] = ignore_index
    return input_ids, labels
