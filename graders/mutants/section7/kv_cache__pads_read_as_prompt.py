"""Mutant: ragged prompts are right-padded and then decoded as if every row were as long
as the longest: the padding becomes part of the shorter prompts.

Misconception: after padding the batch is a rectangle, so the last column holds every
row's last token. For a shorter row it holds padding.
"""


def generate_greedy(model, prompt_ids, max_new_tokens, use_cache=True):
    rows = [torch.as_tensor(p, dtype=torch.long).reshape(-1) for p in prompt_ids]
    longest = max(len(r) for r in rows)
    batch = len(rows)
    ids = torch.zeros(batch, longest + max_new_tokens, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    out = torch.zeros(batch, max_new_tokens, dtype=torch.long)
    if max_new_tokens == 0:
        return out
    with torch.no_grad():
        caches = model.new_caches(batch, longest + max_new_tokens) if use_cache else None
        last = model(ids[:, :longest], caches, 0)[:, -1]  # the bug: the padded last column
        for step in range(max_new_tokens):
            token = last.argmax(dim=-1)
            out[:, step] = token
            pos = longest + step
            if step == max_new_tokens - 1:
                break
            ids[:, pos] = token
            if use_cache:
                last = model(token[:, None], caches, pos)[:, 0]
            else:
                last = model(ids[:, : pos + 1])[:, -1]
    return out
