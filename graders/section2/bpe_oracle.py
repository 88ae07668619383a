"""Oracles for exercise 2.1 (byte-level BPE) that only the hidden graders see.

* :func:`train_bpe` — a small, obviously-correct trainer (recounts every pair after
  every merge); slow, meant for small corpora.
* :func:`encode_with_merges` — plain merge-list BPE, for cases tiktoken cannot express
  (overlapping special tokens).

Both would solve the exercise, so they stay here, never in the learner's tree; the
learner-facing oracles (tiktoken, GPT-2's ranks, synthetic text) are in
``exercises/support/section2/bpe.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import regex

from llmkit.testing import load_support

_PRETOKEN = regex.compile(load_support("2.1").GPT2_PATTERN)


def split_on_specials(text: str, special_tokens: Iterable[str]) -> list[tuple[str, bool]]:
    """``text`` as (piece, is_special) pairs; at each position the longest special token wins."""
    specials = sorted(set(special_tokens), key=len, reverse=True)
    if not specials:
        return [(text, False)] if text else []
    pattern = regex.compile("|".join(regex.escape(s) for s in specials))
    out, pos = [], 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            out.append((text[pos : m.start()], False))
        out.append((m.group(), True))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def pretokens(text: str) -> list[str]:
    return _PRETOKEN.findall(text)


def train_bpe(
    text: str, vocab_size: int, special_tokens: Iterable[str] = ()
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """The exercise's trainer, written to be read, not to be fast."""
    special_tokens = list(dict.fromkeys(special_tokens))
    words: Counter[tuple[bytes, ...]] = Counter()
    for piece, special in split_on_specials(text, special_tokens):
        if not special:
            for tok in pretokens(piece):
                words[tuple(bytes([b]) for b in tok.encode("utf-8"))] += 1
    merges: list[tuple[bytes, bytes]] = []
    while 256 + len(merges) + len(special_tokens) < vocab_size:
        pairs: Counter[tuple[bytes, bytes]] = Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))  # most frequent, then greatest (a, b)
        merges.append(best)
        words = Counter({merge_word(w, best): c for w, c in words.items()})
    vocab = {i: bytes([i]) for i in range(256)}
    for a, b in merges:
        vocab[len(vocab)] = a + b
    for s in special_tokens:
        vocab[len(vocab)] = s.encode("utf-8")
    return vocab, merges


def merge_word(word: tuple[bytes, ...], pair: tuple[bytes, bytes]) -> tuple[bytes, ...]:
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def encode_with_merges(
    text: str, vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]], special_tokens: Iterable[str] = ()
) -> list[int]:
    """Plain merge-list BPE (apply merges in list order), for cases tiktoken cannot
    express (overlapping special tokens). Special tokens not in ``vocab`` get new ids."""
    ids = {b: i for i, b in sorted(vocab.items(), reverse=True)}  # lowest id wins
    next_id = max(vocab) + 1
    for s in dict.fromkeys(special_tokens):
        if s.encode("utf-8") not in ids:
            ids[s.encode("utf-8")], next_id = next_id, next_id + 1
    rank = {pair: r for r, pair in reversed(list(enumerate(merges)))}
    out: list[int] = []
    for piece, special in split_on_specials(text, special_tokens):
        if special:
            out.append(ids[piece.encode("utf-8")])
            continue
        for tok in pretokens(piece):
            word = tuple(bytes([b]) for b in tok.encode("utf-8"))
            while len(word) > 1:
                pair = min(zip(word, word[1:]), key=lambda p: rank.get(p, len(merges)))
                if pair not in rank:
                    break
                word = merge_word(word, pair)
            out.extend(ids[t] for t in word)
    return out
