"""Mutant: ties between equally frequent pairs are broken by comparing token ids, not bytes.

Misconception: a pair of ids orders like the pair of byte strings it stands for. It
does for single bytes (id == byte value), but a merged token's id (256 + k) only says
when it was learned: (256, 97) beats (98, 99) by id while b"st" < b"b" as bytes.
"""


def train_bpe(text, vocab_size, special_tokens=()):
    special_tokens = list(dict.fromkeys(special_tokens))
    if vocab_size < 256 + len(special_tokens):
        raise ValueError("vocab_size too small")
    words = {tuple(t.encode("utf-8")): c for t, c in count_pretokens(text, special_tokens).items()}
    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    while len(vocab) + len(special_tokens) < vocab_size:
        counts = Counter()
        for w, c in words.items():
            for p in zip(w, w[1:]):
                counts[p] += c
        if not counts:
            break
        a, b = max(counts, key=lambda p: (counts[p], p))
        new = len(vocab)
        vocab[new] = vocab[a] + vocab[b]
        merges.append((vocab[a], vocab[b]))
        merged = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        words = merged
    for s in special_tokens:
        vocab[len(vocab)] = s.encode("utf-8")
    return vocab, merges
