"""Support for exercise 2.1 (byte-level BPE): the encoding oracle, GPT-2's vocabulary,
deterministic text, the inputs the tests draw, the named misconceptions and the figure.

* :func:`tiktoken_encoding` — a ``tiktoken.Encoding`` built from a vocabulary, the
  encoding oracle; :func:`with_specials` and :func:`encode_parts` for special tokens.
  Nothing is ever downloaded at run time.
* GPT-2's own ranks (the engine's asset ``gpt2``: ``gpt2.tiktoken``, MIT, shipped in
  the openai-whisper sdist) read from the local cache (:mod:`llmkit.assets`;
  populate it once with ``llmkit fetch-assets``): :func:`gpt2_vocab_and_merges`
  and :func:`gpt2_encoding`.
* :func:`synthetic_lines` / :func:`synthetic_corpus` — deterministic, English-like
  text of any size (unicode, numbers, contractions, whitespace variety), so graders
  and benchmarks need no data files.
* :data:`CORPUS`, :data:`SPECIAL_TEXT`, :data:`TIE_CASES` and the hypothesis strategies
  :func:`corpora` and :func:`chunked`, shared by the public tests and the graders.
* :data:`MISCONCEPTIONS` — the known mistakes a failed check names. Their variants are
  library calls (tiktoken, ``bytes.decode``) or pasted snapshots of what the mistaken
  code returns on the public tests' fixed inputs: no trainer and no encoder here.
* :func:`figure` — the merges of the learner's own tokenizer, step by step.

The graders' trainer (an oracle that would solve the exercise) is not here: it lives
with the hidden graders.
"""

from __future__ import annotations

import base64
import functools
import random
from collections.abc import Iterable, Iterator

from hypothesis import strategies as st

from llmkit import assets
from llmkit.figures import Figure, new_figure, png
from llmkit.testing import Misconception, Misconceptions

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENDOFTEXT = "<|endoftext|>"
GPT2_ENDOFTEXT_ID = 50256


def tiktoken_encoding(vocab: dict[int, bytes], special_tokens: Iterable[str] = (), name: str = "llmkit"):
    """A ``tiktoken.Encoding`` with ranks = the vocabulary's ids (special tokens apart)."""
    import tiktoken

    specials = {s: i for i, b in vocab.items() for s in special_tokens if b == s.encode("utf-8")}
    ranks = {b: i for i, b in sorted(vocab.items()) if i not in specials.values()}
    return tiktoken.Encoding(name=name, pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=specials)


def with_specials(vocab: dict[int, bytes], special_tokens: Iterable[str]) -> dict[int, bytes]:
    """``vocab`` as a ``Tokenizer`` given ``special_tokens`` sees it: each special token
    missing from it gets the next id, one past the largest so far."""
    full = dict(vocab)
    known = set(full.values())
    for s in dict.fromkeys(special_tokens):
        if s.encode("utf-8") not in known:
            full[max(full, default=-1) + 1] = s.encode("utf-8")
            known.add(s.encode("utf-8"))
    return full


def encode_parts(vocab: dict[int, bytes], special_tokens: list[str], parts: list[str]) -> list[int]:
    """The ids of ``"".join(parts)`` when the text is cut into ``parts`` (each either a
    special token or plain text): tiktoken encodes each plain part on its own."""
    full = with_specials(vocab, special_tokens)
    ids = {b: i for i, b in sorted(full.items(), reverse=True)}
    enc = tiktoken_encoding(vocab)
    out: list[int] = []
    for part in parts:
        out.extend([ids[part.encode("utf-8")]] if part in special_tokens else enc.encode_ordinary(part))
    return out


# --- GPT-2's ranks from the local cache -------------------------------------------


def gpt2_missing() -> str:
    """Why a test that needs GPT-2's ranks skips."""
    return assets.missing("gpt2")


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
    data = assets.read("gpt2")
    return None if data is None else parse_tiktoken_file(data)


class _RanksBelow:
    """GPT-2's ranks as BPE sees them before the merge of rank ``limit`` is learned."""

    def __init__(self, ranks: dict[bytes, int], limit: int):
        self.ranks, self.limit = ranks, limit

    def get(self, token: bytes, default=None):
        rank = self.ranks.get(token)
        return rank if rank is not None and rank < self.limit else default

    def __getitem__(self, token: bytes) -> int:
        return self.ranks[token]


@functools.cache
def gpt2_vocab_and_merges() -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]] | None:
    """GPT-2 as the exercise's (vocab, merges): vocab = rank -> bytes plus
    50256 = <|endoftext|>; each merge recovered by running tiktoken's BPE on its token
    with the lower ranks only (as minbpe does for tiktoken files)."""
    from tiktoken._educational import bpe_encode

    ranks = load_gpt2_ranks()
    if ranks is None:
        return None
    vocab = {rank: token for token, rank in ranks.items()}
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            a, b = bpe_encode(_RanksBelow(ranks, rank), token, visualise=None)
            merges.append((vocab[a], vocab[b]))
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


