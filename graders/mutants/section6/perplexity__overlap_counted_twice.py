"""Mutant: every window scores every token it predicts.

Misconception: each window is a small evaluation of its own, so its whole loss goes
into the total. Windows overlap by context - stride tokens: those tokens are counted
once per window that sees them, the later times with more history.
"""


def sliding_window_perplexity(model_fn, ids, context, stride):
    length = ids.shape[0]
    total, count, begin = 0.0, 0, 0
    while True:
        end = min(begin + context, length - 1)
        with torch.no_grad():
            logits = model_fn(ids[None, begin:end])[0]
        total += float(F.cross_entropy(logits.to(torch.float64), ids[begin + 1 : end + 1], reduction="sum"))
        count += end - begin
        if end == length - 1:
            return math.exp(total / count)
        begin += stride
