"""Mutant: the padding is masked by value, labels[input_ids == pad_id] = ignore_index.

Misconception: "padding is wherever the pad token is". With pad_id = eos_id (a common
set-up when a tokenizer has no pad token) this also masks each response's own EOS,
and the fine-tuned model never learns to stop.
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
    labels[input_ids == pad_id] = ignore_index
    return input_ids, labels
