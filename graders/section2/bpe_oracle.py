"""Oracles for exercise 2.1 (byte-level BPE) that only the hidden graders see.

* :func:`train_bpe` — a small, obviously-correct trainer (recounts every pair after
  every merge); slow, meant for small corpora.
* :func:`encode_with_merges` — plain merge-list BPE, for cases tiktoken cannot express
  (overlapping special tokens).

Their keyword-only options compute what a known mistake returns (the graders' variants
of the misconceptions in the support module): ties to the smallest pair or by ids, no
pre-tokenization, special tokens trained on, special tokens on top of vocab_size,
encoding by frequency, the shortest special token first.

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


def split_on_specials(
    text: str, special_tokens: Iterable[str], *, longest_first: bool = True
) -> list[tuple[str, bool]]:
    """``text`` as (piece, is_special) pairs; at each position the longest special token wins
    (with ``longest_first=False``, the shortest)."""
    specials = sorted(set(special_tokens), key=len, reverse=longest_first)
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
    text: str,
    vocab_size: int,
    special_tokens: Iterable[str] = (),
    *,
    ties: str = "greatest",
    pretokenize: bool = True,
    split_specials: bool = True,
    specials_in_vocab_size: bool = True,
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """The exercise's trainer, written to be read, not to be fast. The options are the
    known mistakes: ``ties`` "smallest" or "ids", ``pretokenize=False`` (pairs counted over
    whole pieces of text), ``split_specials=False`` (special tokens trained on as text),
    ``specials_in_vocab_size=False`` (special tokens added on top of vocab_size)."""
    special_tokens = list(dict.fromkeys(special_tokens))
    words: Counter[tuple[bytes, ...]] = Counter()
    pieces = split_on_specials(text, special_tokens) if split_specials else [(text, False)]
    for piece, special in pieces:
        if not special:
            for tok in pretokens(piece) if pretokenize else [piece]:
                words[tuple(bytes([b]) for b in tok.encode("utf-8"))] += 1
    ids = {bytes([i]): i for i in range(256)}
    order = {
        "greatest": lambda p: (pairs[p], p),  # most frequent, then greatest (a, b)
        "smallest": lambda p: (pairs[p], tuple(_Reversed(x) for x in p)),
        "ids": lambda p: (pairs[p], (ids[p[0]], ids[p[1]])),
    }[ties]
    room = vocab_size - (len(special_tokens) if specials_in_vocab_size else 0)
    merges: list[tuple[bytes, bytes]] = []
    while 256 + len(merges) < room:
        pairs: Counter[tuple[bytes, bytes]] = Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = max(pairs, key=order)
        ids[best[0] + best[1]] = 256 + len(merges)
        merges.append(best)
        words = Counter({merge_word(w, best): c for w, c in words.items()})
    vocab = {i: bytes([i]) for i in range(256)}
    for a, b in merges:
        vocab[len(vocab)] = a + b
    for s in special_tokens:
        vocab[len(vocab)] = s.encode("utf-8")
    return vocab, merges


class _Reversed:
    """Bytes that sort the other way round (max() then finds the smallest)."""

    __slots__ = ("b",)

    def __init__(self, b: bytes):
        self.b = b

    def __lt__(self, other: _Reversed) -> bool:
        return self.b > other.b

    def __eq__(self, other) -> bool:
        return self.b == other.b


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
    text: str,
    vocab: dict[int, bytes],
    merges: list[tuple[bytes, bytes]],
    special_tokens: Iterable[str] = (),
    *,
    by_frequency: bool = False,
    longest_special_first: bool = True,
) -> list[int]:
    """Plain merge-list BPE (apply merges in list order), for cases tiktoken cannot
    express (overlapping special tokens). Special tokens not in ``vocab`` get new ids.
    The options are the known mistakes: ``by_frequency`` (each step merges the pre-token's
    most frequent mergeable pair, ties by rank), ``longest_special_first=False``."""
    ids = {b: i for i, b in sorted(vocab.items(), reverse=True)}  # lowest id wins
    next_id = max(vocab) + 1
    for s in dict.fromkeys(special_tokens):
        if s.encode("utf-8") not in ids:
            ids[s.encode("utf-8")], next_id = next_id, next_id + 1
    rank = {pair: r for r, pair in reversed(list(enumerate(merges)))}
    out: list[int] = []
    for piece, special in split_on_specials(text, special_tokens, longest_first=longest_special_first):
        if special:
            out.append(ids[piece.encode("utf-8")])
            continue
        for tok in pretokens(piece):
            word = tuple(bytes([b]) for b in tok.encode("utf-8"))
            while len(word) > 1:
                pairs = [p for p in zip(word, word[1:]) if p in rank]
                if not pairs:
                    break
                if by_frequency:
                    pair = min(pairs, key=lambda p: (-pairs.count(p), rank[p]))
                else:
                    pair = min(pairs, key=rank.__getitem__)
                word = merge_word(word, pair)
            out.extend(ids[t] for t in word)
    return out
