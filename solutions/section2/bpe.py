"""Exercise 2.1 — byte-level BPE tokenizer (reference solution).

Training counts each distinct pre-token once, keeps pair counts and an index
pair -> words up to date after each merge (only the words that contain the
merged pair change), and finds the most frequent pair with a lazy max-heap.
Encoding applies merges by rank inside each pre-token, with a cache.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from itertools import chain, repeat

import regex

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
PRETOKEN = regex.compile(GPT2_PATTERN)


def special_splitter(special_tokens: Iterable[str]):
    """A regex that splits text on the special tokens (kept, longest first), or None."""
    specials = sorted(set(special_tokens), key=len, reverse=True)
    if not specials:
        return None
    return regex.compile("(" + "|".join(regex.escape(s) for s in specials) + ")")


# --- training ------------------------------------------------------------------


class _Desc:
    """Reverses the order of a pair of byte strings, so a min-heap pops the greatest."""

    __slots__ = ("key",)

    def __init__(self, key: tuple[bytes, bytes]):
        self.key = key

    def __lt__(self, other: _Desc) -> bool:
        return self.key > other.key


def count_pretokens(text: str, special_tokens: Iterable[str]) -> Counter[str]:
    splitter = special_splitter(special_tokens)
    pieces = splitter.split(text)[::2] if splitter else [text]  # odd items are the special tokens
    counts: Counter[str] = Counter()
    for piece in pieces:
        counts.update(PRETOKEN.findall(piece))
    return counts


def train_bpe(
    text: str, vocab_size: int, special_tokens: Iterable[str] = ()
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    special_tokens = list(dict.fromkeys(special_tokens))
    if vocab_size < 256 + len(special_tokens):
        raise ValueError(f"vocab_size {vocab_size} < 256 bytes + {len(special_tokens)} special tokens")
    vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}

    # Distinct pre-tokens as lists of token ids, with their counts.
    words: list[list[int]] = []
    freqs: list[int] = []
    for token, count in count_pretokens(text, special_tokens).items():
        encoded = token.encode("utf-8")
        if len(encoded) > 1:  # a single byte has no pair
            words.append(list(encoded))
            freqs.append(count)

    pair_counts: defaultdict[tuple[int, int], int] = defaultdict(int)
    where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> words that (may) hold it
    for wi, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freq
            where[pair].add(wi)

    def entry(pair, count):
        return (-count, _Desc((vocab[pair[0]], vocab[pair[1]])), pair)

    heap = [entry(p, c) for p, c in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[bytes, bytes]] = []
    n_merges = vocab_size - 256 - len(special_tokens)
    while len(merges) < n_merges and heap:
        neg, _, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count != -neg:  # stale: counts only fall, so re-file it under its current count
            if count > 0:
                heapq.heappush(heap, entry(pair, count))
            continue
        a, b = pair
        new_id = len(vocab)
        vocab[new_id] = vocab[a] + vocab[b]
        merges.append((vocab[a], vocab[b]))
        touched: set[tuple[int, int]] = set()
        for wi in where.pop(pair):
            word, freq = words[wi], freqs[wi]
            if len(word) < 2:
                continue
            merged, i, n = [], 0, len(word)
            while i < n:
                if i < n - 1 and word[i] == a and word[i + 1] == b:
                    merged.append(new_id)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            if len(merged) == n:
                continue  # the index is lazy: this word no longer holds the pair
            for p in zip(word, word[1:]):
                pair_counts[p] -= freq
            for p in zip(merged, merged[1:]):
                pair_counts[p] += freq
                if new_id in p:
                    where[p].add(wi)
                    touched.add(p)
            words[wi] = merged
        del pair_counts[pair]
        for p in touched:
            heapq.heappush(heap, entry(p, pair_counts[p]))

    for s in special_tokens:
        vocab[len(vocab)] = s.encode("utf-8")
    return vocab, merges


# --- encoding and decoding --------------------------------------------------------

CACHE_LIMIT = 100_000  # distinct pre-tokens remembered; bounds memory on endless streams
NO_RANK = float("inf")


class Tokenizer:
    def __init__(
        self,
        vocab: dict[int, bytes],
        merges: list[tuple[bytes, bytes]],
        special_tokens: list[str] | None = None,
    ):
        self.vocab = dict(vocab)
        self.special_tokens = list(dict.fromkeys(special_tokens or ()))
        self.ids: dict[bytes, int] = {}
        for i, token in sorted(self.vocab.items(), reverse=True):
            self.ids[token] = i  # the lowest id wins if a token appears twice
        for s in self.special_tokens:
            if s.encode("utf-8") not in self.ids:
                new_id = max(self.vocab, default=-1) + 1
                self.vocab[new_id] = s.encode("utf-8")
                self.ids[s.encode("utf-8")] = new_id
        self.special_ids = {s: self.ids[s.encode("utf-8")] for s in self.special_tokens}
        self.ranks: dict[tuple[bytes, bytes], int] = {}
        for rank, pair in enumerate(merges):
            self.ranks.setdefault(tuple(pair), rank)
        self.byte_tokens = [bytes([b]) for b in range(256)]
        self.splitter = special_splitter(self.special_tokens)
        self.max_special = max(map(len, self.special_tokens), default=0)
        self.cache: dict[str, list[int]] = {}

    def _bpe(self, pretoken: str) -> list[int]:
        """Ids of one pre-token: merge the lowest-ranked adjacent pair, leftmost first, until none is left."""
        ids = self.cache.get(pretoken)
        if ids is not None:
            return ids
        parts = [self.byte_tokens[b] for b in pretoken.encode("utf-8")]
        rank_of = self.ranks.get
        while len(parts) > 1:
            pair_ranks = list(map(rank_of, zip(parts, parts[1:]), repeat(NO_RANK)))
            best = min(pair_ranks)
            if best == NO_RANK:
                break
            i = pair_ranks.index(best)  # later copies of the same pair follow in the next rounds
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        ids = [self.ids[p] for p in parts]
        if len(self.cache) >= CACHE_LIMIT:
            self.cache.clear()
        self.cache[pretoken] = ids
        return ids

    def _encode_plain(self, text: str) -> list[int]:
        cache, bpe = self.cache, self._bpe
        return list(chain.from_iterable(cache.get(t) or bpe(t) for t in PRETOKEN.findall(text)))

    def encode(self, text: str) -> list[int]:
        if self.splitter is None:
            return self._encode_plain(text)
        out: list[int] = []
        for i, piece in enumerate(self.splitter.split(text)):
            if i % 2:
                out.append(self.special_ids[piece])
            elif piece:
                out.extend(self._encode_plain(piece))
        return out

    def encode_iterable(self, iterable: Iterable[str]) -> Iterator[int]:
        """Encode a stream of strings lazily. The buffer keeps only the text that
        later input could still change: a possible start of a special token and
        the last pre-tokens (a pre-token touching the end may grow; ``'`` may
        become ``'ll``)."""
        buffer = ""
        for chunk in iterable:
            buffer += chunk
            ids, buffer = self._encode_settled(buffer)
            yield from ids
        if buffer:
            yield from self.encode(buffer)

    def _encode_settled(self, buffer: str) -> tuple[list[int], str]:
        """(ids of the longest prefix no later text can change, the rest)."""
        end, plain_from = len(buffer), 0
        if self.splitter is not None:
            # Where could more text still complete a special token (or a longer one)?
            open_starts = [
                i
                for i in range(max(0, end - self.max_special + 1), end)
                if any(s.startswith(buffer[i:]) and s != buffer[i:] for s in self.special_tokens)
            ]
            for m in self.splitter.finditer(buffer):
                if open_starts and open_starts[0] <= m.start():
                    break  # this match (or what precedes it) may change
                plain_from = m.end()  # a settled special token
                open_starts = [i for i in open_starts if i >= plain_from]
            if open_starts:
                end = open_starts[0]
        ids = self.encode(buffer[:plain_from]) if plain_from else []
        tokens = PRETOKEN.findall(buffer, plain_from, end)  # they tile buffer[plain_from:end]
        k, cut = len(tokens), end
        # Hold back the last token, and any that starts in the last 3 characters
        # (whether 're or 'll matches there depends on what follows).
        while k and (k == len(tokens) or cut - len(tokens[k - 1]) + 3 > end):
            k -= 1
            cut -= len(tokens[k])
        cache, bpe = self.cache, self._bpe
        ids.extend(chain.from_iterable(cache.get(t) or bpe(t) for t in tokens[:k]))
        return ids, buffer[cut:]

    def decode(self, ids: Iterable[int]) -> str:
        vocab = self.vocab
        return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
