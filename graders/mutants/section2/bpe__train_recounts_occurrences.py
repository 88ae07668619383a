"""Mutant: training keeps every pre-token occurrence and recounts all pairs after each merge.

Misconception: the simple loop is fast enough. The merges are right, but a
text repeats each word many times; counting each distinct pre-token once (and
updating only what a merge changes) is what makes training practical.
"""


def train_bpe(text, vocab_size, special_tokens=()):
    special_tokens = list(dict.fromkeys(special_tokens))
    if vocab_size < 256 + len(special_tokens):
        raise ValueError("vocab_size too small")
    splitter = special_splitter(special_tokens)
    pieces = splitter.split(text)[::2] if splitter else [text]
    words = [list(t.encode("utf-8")) for piece in pieces for t in PRETOKEN.findall(piece)]
    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    while len(vocab) + len(special_tokens) < vocab_size:
        counts = Counter()
        for w in words:
            counts.update(zip(w, w[1:]))
        if not counts:
            break
        a, b = max(counts, key=lambda p: (counts[p], vocab[p[0]], vocab[p[1]]))
        new = len(vocab)
        vocab[new] = vocab[a] + vocab[b]
        merges.append((vocab[a], vocab[b]))
        for k, w in enumerate(words):
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[k] = out
    for s in special_tokens:
        vocab[len(vocab)] = s.encode("utf-8")
    return vocab, merges
