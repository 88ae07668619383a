"""Oracles and data for exercise 2.1 (byte-level BPE).

* :func:`train_bpe` — a small, obviously-correct trainer (recounts every pair
  after every merge); slow, meant for small corpora.
* :func:`tiktoken_encoding` — a ``tiktoken.Encoding`` built from a vocabulary,
  the encoding oracle. Nothing is ever downloaded at run time.
* GPT-2's own ranks (``gpt2.tiktoken``, MIT, shipped in the openai-whisper
  sdist) read from a local cache: ``$LLMKIT_CACHE`` or ``~/.cache/llmkit``.
  Populate it once with ``llmkit fetch-assets``.
* :func:`synthetic_lines` / :func:`synthetic_corpus` — deterministic,
  English-like text of any size (unicode, numbers, contractions, whitespace
  variety), so graders and benchmarks need no data files.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import random
import sys
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import regex

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENDOFTEXT = "<|endoftext|>"
GPT2_ENDOFTEXT_ID = 50256

GPT2_FILE = "gpt2.tiktoken"
GPT2_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"  # tiktoken's r50k_base
WHISPER_SDIST = "openai-whisper==20250625"
WHISPER_MEMBER = "whisper/assets/gpt2.tiktoken"

_PRETOKEN = regex.compile(GPT2_PATTERN)


# --- the oracle trainer --------------------------------------------------------


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


def tiktoken_encoding(vocab: dict[int, bytes], special_tokens: Iterable[str] = (), name: str = "llmkit"):
    """A ``tiktoken.Encoding`` with ranks = the vocabulary's ids (special tokens apart)."""
    import tiktoken

    specials = {s: i for i, b in vocab.items() for s in special_tokens if b == s.encode("utf-8")}
    ranks = {b: i for i, b in sorted(vocab.items()) if i not in specials.values()}
    return tiktoken.Encoding(name=name, pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=specials)


# --- GPT-2's ranks from a local cache --------------------------------------------


def cache_dir() -> Path:
    return Path(os.environ.get("LLMKIT_CACHE") or Path.home() / ".cache" / "llmkit")


def gpt2_path() -> Path:
    return cache_dir() / GPT2_FILE


GPT2_MISSING = "GPT-2's ranks are not in the local cache ({path}); run `llmkit fetch-assets` once"


def parse_tiktoken_file(data: bytes) -> dict[bytes, int]:
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def load_gpt2_ranks() -> dict[bytes, int] | None:
    """GPT-2's 50,000 merges + 256 bytes as {token bytes: rank}, or None if not cached."""
    path = gpt2_path()
    if not path.is_file():
        return None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != GPT2_SHA256:
        raise RuntimeError(f"{path} is corrupt (sha256 mismatch); delete it and fetch again")
    return parse_tiktoken_file(data)


def _bpe_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < max_rank and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            return parts
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]


@functools.cache
def gpt2_vocab_and_merges() -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]] | None:
    """GPT-2 as the exercise's (vocab, merges): vocab = rank -> bytes plus
    50256 = <|endoftext|>; each merge recovered by running BPE on its token with
    the lower ranks only (as minbpe does for tiktoken files)."""
    ranks = load_gpt2_ranks()
    if ranks is None:
        return None
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            a, b = _bpe_parts(ranks, token, rank)
            merges.append((a, b))
    vocab = {rank: token for token, rank in ranks.items()}
    vocab[GPT2_ENDOFTEXT_ID] = ENDOFTEXT.encode()
    return vocab, merges


@functools.cache
def gpt2_encoding():
    """tiktoken's "gpt2" encoding rebuilt from the cached ranks, or None."""
    ranks = load_gpt2_ranks()
    if ranks is None:
        return None
    import tiktoken

    return tiktoken.Encoding(
        name="gpt2-local",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: GPT2_ENDOFTEXT_ID},
    )


def fetch_gpt2(source: str | None = None) -> Path:
    """Put ``gpt2.tiktoken`` in the cache: from ``source`` (a gpt2.tiktoken file or an
    openai-whisper sdist) or by ``pip download`` of the openai-whisper sdist."""
    import subprocess

    target = gpt2_path()
    with tempfile.TemporaryDirectory() as tmp:
        if source is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
            subprocess.run([*cmd, "-d", tmp, WHISPER_SDIST], check=True)
            source = str(next(Path(tmp).glob("openai_whisper-*.tar.gz")))
        if tarfile.is_tarfile(source):
            with tarfile.open(source) as tar:
                member = next(m for m in tar.getmembers() if m.name.endswith(WHISPER_MEMBER))
                data = tar.extractfile(member).read()
        else:
            data = Path(source).read_bytes()
    if hashlib.sha256(data).hexdigest() != GPT2_SHA256:
        raise RuntimeError(f"{source}: not GPT-2's ranks (sha256 mismatch)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=target.parent, prefix=f".{GPT2_FILE}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp_path, target)
    for cached in (load_gpt2_ranks, gpt2_vocab_and_merges, gpt2_encoding):
        cached.cache_clear()
    return target


# --- deterministic English-like text ----------------------------------------------

FUNCTION_WORDS = (
    "the of and to a in that is was he for it with as his on be at by i this had not are but from or "
    "have an they which one you were her all she there would their we him been has when who will more "
    "no if out so said what up its about into than them can only other new some could time these two "
    "may then do first any my now such like our over man me even most made after also did many before "
    "must through back years where much your way well down should because each just those people how "
    "too little state good very make world still own see men work long get here between both life being "
    "under never day same another know while last might us great old year off come since against go came "
    "right used take three lord king sir thou thee thy shall love heart night death hand eyes"
).split()
CONTRACTIONS = ("don't", "it's", "we'll", "I'm", "you're", "they've", "she'd", "can't", "o'er", "'tis")
UNICODE_WORDS = (
    "café", "naïve", "résumé", "Straße", "façade", "Ελλάδα", "Москва", "東京", "日本語", "नमस्ते",
    "Zürich", "São", "coöperate", "—", "…", "“quoted”", "‘so’", "½", "€42", "😀", "🚀", "👍🏽", "❤️",
)  # fmt: skip
ONSETS = ("", "b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "w", "th", "st", "br", "ch")
NUCLEI = ("a", "e", "i", "o", "u", "ea", "ou", "ai", "ee", "y")
CODAS = ("", "", "n", "r", "s", "t", "l", "d", "ng", "st", "rd", "ll", "ck")
SUFFIXES = ("", "", "", "s", "ed", "ing", "ly", "er", "ness", "tion")
NAMES = ("ROMEO", "JULIET", "HAMLET", "OPHELIA", "KING", "QUEEN", "FIRST CITIZEN", "MENENIUS", "NURSE")


def _lexicon(rng: random.Random, size: int) -> list[str]:
    words = list(FUNCTION_WORDS)
    seen = set(words)
    while len(words) < size:
        word = "".join(
            rng.choice(ONSETS) + rng.choice(NUCLEI) + rng.choice(CODAS)
            for _ in range(rng.choice((1, 1, 2, 2, 3)))
        )
        word += rng.choice(SUFFIXES)
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def synthetic_lines(n_bytes: int, seed: int = 0, lexicon_size: int = 20000) -> Iterator[str]:
    """Lines (each ending in "\\n") of seeded English-like text, about ``n_bytes``
    UTF-8 bytes in all, produced lazily: Zipf-distributed words from a fixed
    lexicon, play-like speaker lines, punctuation, contractions, numbers, unicode
    words and emoji, blank lines, indentation, double spaces and tabs."""
    rng = random.Random(seed)
    words = _lexicon(rng, lexicon_size)
    cum, total = [], 0.0
    for r in range(len(words)):
        total += 1.0 / (r + 2.7)
        cum.append(total)
    produced = 0
    while produced < n_bytes:
        lines = [rng.choice(NAMES) + ":\n"] if rng.random() < 0.5 else []
        for _ in range(rng.randint(1, 6)):
            line = _sentence(rng, words, cum)
            while rng.random() < 0.5 and len(line) < 70:
                line += rng.choice((" ", " ", " ", "  ", "\t")) + _sentence(rng, words, cum)
            indent = rng.choices(("", "    ", "\t", " "), (90, 5, 3, 2))[0]
            trail = rng.choices(("", " ", "  "), (95, 4, 1))[0]
            lines.append(indent + line + trail + "\n")
        lines.append(rng.choices(("\n", "\n\n", "\r\n"), (85, 10, 5))[0])
        for line in lines:
            produced += len(line.encode("utf-8"))
            yield line


def _sentence(rng: random.Random, words: list[str], cum: list[float]) -> str:
    n = rng.randint(3, 14)
    chosen = rng.choices(words, cum_weights=cum, k=n)
    out = []
    for i, w in enumerate(chosen):
        x = rng.random()
        if x < 0.02:
            w = rng.choice(CONTRACTIONS)
        elif x < 0.03:
            w = rng.choice(UNICODE_WORDS)
        elif x < 0.04:
            w = str(rng.choice((rng.randint(0, 99), rng.randint(1500, 2025), rng.randint(0, 10**6))))
        if i == 0 or x > 0.97:
            w = w[:1].upper() + w[1:]
        if i < n - 1 and rng.random() < 0.08:
            w += rng.choice((",", ",", ";", ":", " -", "'s"))
        out.append(w)
    return " ".join(out) + rng.choices((".", "!", "?", "...", "."), (70, 10, 12, 3, 5))[0]


def synthetic_corpus(n_bytes: int, seed: int = 0, lexicon_size: int = 20000) -> str:
    """About ``n_bytes`` UTF-8 bytes of :func:`synthetic_lines` as one string."""
    return "".join(synthetic_lines(n_bytes, seed, lexicon_size))
