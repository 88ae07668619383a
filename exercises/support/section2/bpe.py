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

import regex
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
def gpt2_vocab_and_merges(
    limit: int | None = None,
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]] | None:
    """GPT-2 as the exercise's (vocab, merges): vocab = rank -> bytes plus
    50256 = <|endoftext|>; each merge recovered by running tiktoken's BPE on its token
    with the lower ranks only (as minbpe does for tiktoken files). With ``limit``, only
    the tokens of rank < limit (GPT-2 as it was after its first limit - 256 merges)."""
    from tiktoken._educational import bpe_encode

    ranks = load_gpt2_ranks()
    if ranks is None:
        return None
    kept = sorted((kv for kv in ranks.items() if limit is None or kv[1] < limit), key=lambda kv: kv[1])
    vocab = {rank: token for token, rank in kept}
    merges = []
    for token, rank in kept:
        if len(token) > 1:
            a, b = bpe_encode(_RanksBelow(ranks, rank), token, visualise=None)
            merges.append((vocab[a], vocab[b]))
    vocab[GPT2_ENDOFTEXT_ID] = ENDOFTEXT.encode()
    return vocab, merges


@functools.cache
def gpt2_encoding(limit: int | None = None):
    """tiktoken's "gpt2" encoding rebuilt from the cached ranks (those below ``limit``), or None."""
    ranks = load_gpt2_ranks()
    if ranks is None:
        return None
    import tiktoken

    return tiktoken.Encoding(
        name="gpt2-local" if limit is None else f"gpt2-local-{limit}",
        pat_str=GPT2_PATTERN,
        mergeable_ranks={t: r for t, r in ranks.items() if limit is None or r < limit},
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


# --- inputs the public tests and graders share --------------------------------------

# Sennrich et al.'s classic words, then punctuation, a contraction, numbers, unicode.
CORPUS = (
    "low low low low low lower lower widest widest widest newest newest newest newest newest newest\n"
    "the cat sat on the mat. The cat's hat? 42 cats! naïve café 😀😀\n"
)
SPECIAL_TEXT = ("hello world" + ENDOFTEXT) * 5 + ENDOFTEXT * 2
# Tiny texts whose merges hinge on ties: (text, vocab_size).
TIE_CASES = [
    ("zy ab", 257),  # three pairs, one each: (z, y) is the greatest
    ("ab ba ab ba", 258),
    ("abc bca cab", 259),
    ("xabc xabc yab cyab", 262),  # later ties between merged tokens
    ("hug pug pun bun hugs", 266),
]

EMOJI = ["😀", "👍🏽", "❤️", "🚀", "👨‍👩‍👧"]
no_surrogates = st.characters(blacklist_categories=("Cs",))
# Characters assigned in this Python's Unicode database. Newer ones (e.g. CJK
# extension J) are letters to a recent `regex` but not yet to tiktoken's Rust regex,
# so the two pre-tokenizers, both correct for their Unicode version, would differ.
assigned = st.characters(blacklist_categories=("Cs", "Cn"))
fragments = st.one_of(
    st.text(alphabet="abcde", min_size=1, max_size=6),  # few letters: many repeated pairs and ties
    st.sampled_from([" the", " a", "ab", "ba", "aaa", "'s", "'ll", "'re", "'", "12", "3", "!?", "..."]),
    st.text(alphabet=" \t\n\r", min_size=1, max_size=5),  # whitespace runs
    st.sampled_from(EMOJI + ["é", "日本", "Ω", "ß", "\u00a0", "\u3000"]),
    st.text(assigned, min_size=1, max_size=3),
)


@st.composite
def corpora(draw_st, specials=(), max_fragments=60, words=()):
    """Text joined from random fragments (and ``words``), special tokens among them
    (repeated, adjacent)."""
    pieces = fragments if not words else st.one_of(fragments, st.sampled_from(list(words)))
    parts = draw_st(st.lists(pieces, max_size=max_fragments))
    if specials:
        n = draw_st(st.integers(0, max(1, len(parts) // 3)))
        for _ in range(n):
            pos = draw_st(st.integers(0, len(parts)))
            parts.insert(pos, draw_st(st.sampled_from(list(specials))) * draw_st(st.integers(1, 2)))
    return "".join(parts)


@st.composite
def chunked(draw_st, text, max_cuts=12):
    """``text`` cut at random places (inside words, inside special tokens, empty chunks)."""
    cuts = sorted(draw_st(st.lists(st.integers(0, len(text)), max_size=max_cuts)))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


def is_unicode_decode_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a UnicodeDecodeError (as raised, or as a sandboxed run reports it)."""
    return isinstance(exc, UnicodeDecodeError) or "UnicodeDecodeError" in f"{type(exc).__name__}: {exc}"


# --- misconceptions: what each known mistake returns ---------------------------------
#
# Trainer and encoder mistakes cannot be computed here without writing a trainer or an
# encoder (which would solve the exercise), so their variants replay what the mistaken
# code returned on the public tests' fixed inputs, pasted below (computed once with the
# mutants in graders/mutants/section2/). A variant given other inputs raises, and the
# check passes it over. Mistakes a test can see for itself (a merge that crosses a
# pre-token, a special token's bytes in a merge, a vocabulary larger than vocab_size)
# are named by the test directly, on any input.

# train_bpe(text, vocab_size)'s merges with the tie rule wrong, keyed by (text, vocab_size).
_MERGES_TIES_TO_SMALLEST = {
    (CORPUS, 300): [
        (b"e", b"s"), (b"es", b"t"), (b" ", b"n"), (b"l", b"o"), (b"lo", b"w"), (b" ", b"low"),
        (b" n", b"e"), (b" ne", b"w"), (b" new", b"est"), (b"a", b"t"), (b" ", b"c"),
        (b" ", b"w"), (b" c", b"at"), (b" w", b"i"), (b" wi", b"d"), (b" wid", b"est"),
        (b"h", b"e"), (b" low", b"e"), (b" lowe", b"r"), (b"t", b"he"), (b"\x98", b"\x80"),
        (b"\x9f", b"\x98\x80"), (b"\xf0", b"\x9f\x98\x80"), (b" ", b"4"), (b" ", b"T"),
        (b" ", b"h"), (b" ", b"m"), (b" ", b"o"), (b" ", b"s"), (b" ", b"the"),
        (b" ", b"\xf0\x9f\x98\x80"), (b" 4", b"2"), (b" T", b"he"), (b" c", b"a"),
        (b" ca", b"f"), (b" caf", b"\xc3"), (b" caf\xc3", b"\xa9"), (b" cat", b"s"),
        (b" h", b"at"), (b" m", b"at"), (b" n", b"a"), (b" na", b"\xc3"),
        (b" na\xc3", b"\xaf"), (b" na\xc3\xaf", b"v"),
    ],
    (SPECIAL_TEXT, 264): [
        (b" ", b"w"), (b" w", b"o"), (b" wo", b"r"), (b" wor", b"l"), (b" worl", b"d"),
        (b"e", b"l"), (b"el", b"l"),
    ],
    ("zy ab", 257): [(b" ", b"a")],
    ("ab ba ab ba", 258): [(b" ", b"b"), (b" b", b"a")],
    ("abc bca cab", 259): [(b"a", b"b"), (b" ", b"b"), (b" ", b"c")],
    ("xabc xabc yab cyab", 262): [
        (b"a", b"b"), (b"ab", b"c"), (b"x", b"abc"), (b"y", b"ab"), (b" ", b"c"), (b" ", b"xabc"),
    ],
    ("hug pug pun bun hugs", 266): [
        (b"u", b"g"), (b" ", b"p"), (b"h", b"ug"), (b"u", b"n"), (b" ", b"b"), (b" ", b"hug"),
        (b" b", b"un"), (b" hug", b"s"), (b" p", b"ug"), (b" p", b"un"),
    ],
}  # fmt: skip
_MERGES_TIES_BY_IDS = {
    (CORPUS, 300): [
        (b"s", b"t"), (b"e", b"st"), (b"o", b"w"), (b"l", b"ow"), (b" ", b"n"), (b" n", b"e"),
        (b" ne", b"w"), (b" new", b"est"), (b"a", b"t"), (b" ", b"low"), (b" ", b"c"),
        (b" c", b"at"), (b"w", b"i"), (b"wi", b"d"), (b"wid", b"est"), (b"h", b"e"),
        (b" ", b"widest"), (b" low", b"e"), (b" lowe", b"r"), (b"\xf0", b"\x9f"),
        (b"\xf0\x9f", b"\x98"), (b"\xf0\x9f\x98", b"\x80"), (b"t", b"he"),
        (b"\xf0\x9f\x98\x80", b"\xf0\x9f\x98\x80"), (b" cat", b"s"), (b" c", b"a"),
        (b" ca", b"f"), (b" caf", b"\xc3"), (b" caf\xc3", b"\xa9"), (b" n", b"a"),
        (b" na", b"\xc3"), (b" na\xc3", b"\xaf"), (b" na\xc3\xaf", b"v"),
        (b" na\xc3\xafv", b"e"), (b"s", b"at"), (b"o", b"n"), (b"m", b"at"), (b"h", b"at"),
        (b"T", b"he"), (b"4", b"2"), (b"'", b"s"), (b" ", b"42"), (b" ", b"The"),
        (b" ", b"hat"),
    ],
    ("xabc xabc yab cyab", 262): [
        (b"a", b"b"), (b"ab", b"c"), (b"y", b"ab"), (b"x", b"abc"), (b"c", b"yab"), (b" ", b"cyab"),
    ],
    ("hug pug pun bun hugs", 266): [
        (b"u", b"g"), (b"u", b"n"), (b"h", b"ug"), (b" ", b"p"), (b" p", b"un"),
        (b" p", b"ug"), (b"hug", b"s"), (b"b", b"un"), (b" ", b"bun"), (b" ", b"hugs"),
    ],
}  # fmt: skip


_PASTED_WITH = {SPECIAL_TEXT: [ENDOFTEXT]}  # the special tokens of the pasted runs (else none)


def _pasted_merges(table):
    """A ``train_bpe`` variant that returns the pasted merges (vocab_size may be smaller
    than the pasted one: training is greedy, so fewer slots give a prefix)."""

    def variant(text, vocab_size, special_tokens=()):
        for (known, size), merges in table.items():
            if known == text and vocab_size <= size and list(special_tokens) == _PASTED_WITH.get(text, []):
                return merges[: len(merges) - (size - vocab_size)]
        raise LookupError("no pasted merges for these inputs")

    return variant


# Encoding by frequency, on a text of the public test with the CORPUS vocabulary: in the
# pre-token " newestlowest" the pair (w, est) occurs twice, so it merges before (o, w),
# whose rank is lower: "l" "o" "west" instead of "low" "est".
FREQUENCY_TEXT = "the newest cats sat lower<|endoftext|> café 😀! the newestlowest hat"
_ENCODED_BY_FREQUENCY = {
    FREQUENCY_TEXT: [276, 264, 295, 299, 278, 300, 296, 32, 275, 33, 298, 264, 108, 111, 261, 32, 287],
}  # fmt: skip


def _encoded_by_frequency(vocab, merges, special_tokens, text):
    if len(merges) != 44 or list(special_tokens) != [ENDOFTEXT]:  # train_bpe(CORPUS, 300)'s vocabulary
        raise LookupError("no pasted ids for this vocabulary")
    return _ENCODED_BY_FREQUENCY[text]


# Overlapping special tokens tried shortest first: how such code cuts the public test's
# texts, keyed by (special tokens, text).
_CUT_SHORTEST_FIRST = {
    (("<|a|>", "<|a|><|a|>"), "x<|a|><|a|><|a|>y<|a|>"): ["x", "<|a|>", "<|a|>", "<|a|>", "y", "<|a|>"],
    (("<s>", "<s></s>", "</s>"), "a<s></s>b<s>c</s><s></s></s>"):
        ["a", "<s>", "</s>", "b", "<s>", "c", "</s>", "<s>", "</s>", "</s>"],
    (("==", "==="), "a===b====c=="): ["a", "==", "=b", "==", "==", "c", "=="],
}  # fmt: skip


def _shortest_special_first(vocab, merges, special_tokens, text):
    return encode_parts(vocab, list(special_tokens), _CUT_SHORTEST_FIRST[(tuple(special_tokens), text)])


def _each_chunk_alone(vocab, merges, special_tokens, chunks):
    """encode_iterable that encodes every chunk on its own: tiktoken, chunk by chunk."""
    enc = tiktoken_encoding(with_specials(vocab, special_tokens), special_tokens)
    return [i for chunk in chunks for i in enc.encode(chunk, allowed_special="all")]


def _each_token_decoded(vocab, ids):
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)


PRETOKENS = "Pre-tokens, special tokens and the vocabulary"
MISCONCEPTIONS = Misconceptions(
    "exercises/section2/README.md",
    Misconception(
        "ties_to_smallest",
        "ties broken to the smallest pair",
        "among equally frequent pairs take the greatest (left, right) tuple of bytes: "
        "max(counts, key=lambda p: (counts[p], p))",
        readme="Ties between equally frequent pairs",
        variants={"train_bpe": _pasted_merges(_MERGES_TIES_TO_SMALLEST)},
    ),
    Misconception(
        "ties_by_ids",
        "ties broken by token ids",
        "compare the pairs' bytes, not their ids: a merged token's id (256 + k) says when it "
        "was learned, not how its bytes sort",
        readme="Ties between equally frequent pairs",
        variants={"train_bpe": _pasted_merges(_MERGES_TIES_BY_IDS)},
    ),
    Misconception(
        "merges_across_pretokens",
        "merges across pre-tokens",
        "split the text with GPT2_PATTERN first and count pairs inside each pre-token only",
        readme=PRETOKENS,
    ),
    Misconception(
        "special_tokens_merged",
        "special tokens trained on as text",
        "cut the text at the special tokens before pre-tokenizing: their bytes never take part in merges",
        readme=PRETOKENS,
    ),
    Misconception(
        "vocab_size_excludes_specials",
        "special tokens added on top of vocab_size",
        "vocab_size counts the whole vocabulary: 256 bytes + merges + special tokens",
        readme=PRETOKENS,
    ),
    Misconception(
        "encode_by_frequency",
        "encoding merges the most frequent pair",
        "encoding replays the merges by rank: in each pre-token merge the adjacent pair that "
        "comes earliest in merges, whatever its count",
        readme="Encoding: rank order and special tokens",
        variants={"Tokenizer.encode": _encoded_by_frequency},
    ),
    Misconception(
        "special_shortest_wins",
        "the shorter special token wins",
        "where special tokens overlap the longest wins: sort them longest first before "
        "joining them into one regex alternation",
        readme="Encoding: rank order and special tokens",
        variants={"Tokenizer.encode": _shortest_special_first},
    ),
    Misconception(
        "encode_iterable_per_chunk",
        "each chunk encoded on its own",
        "a chunk may end inside a word or a special token: hold back the unfinished tail and "
        "encode it with the next chunk",
        readme="Streaming with encode_iterable",
        variants={"Tokenizer.encode_iterable": _each_chunk_alone},
    ),
    Misconception(
        "encode_iterable_reads_all",
        "encode_iterable reads all its input first",
        "a generator must encode and yield as it reads; joining the whole input first holds it all in memory",
        readme="Streaming with encode_iterable",
        kind="memory",
    ),
    Misconception(
        "decode_per_token",
        "each token decoded on its own",
        "join all the tokens' bytes, then decode once: a character can be split across tokens",
        readme="Decoding bytes",
        variants={"Tokenizer.decode": _each_token_decoded},
    ),
    Misconception(
        "decode_strict",
        "strict UTF-8 decoding",
        "ids can spell bytes that are not valid UTF-8: decode with errors='replace' (U+FFFD)",
        readme="Decoding bytes",
    ),
    Misconception(
        "no_pretoken_cache",
        "no cache of encoded pre-tokens",
        "text repeats the same pre-tokens: remember each one's ids instead of merging it again",
        readme="Training and encoding speed",
        kind="speed",
    ),
    Misconception(
        "train_recounts_occurrences",
        "training recounts every pre-token occurrence",
        "count each distinct pre-token once, with its number of occurrences",
        readme="Training and encoding speed",
        kind="speed",
    ),
)


def merge_outside_pretokens(
    text: str, special_tokens: list[str], merges: list[tuple[bytes, bytes]]
) -> tuple[str, bytes] | None:
    """The first merged token that no pre-token of ``text`` contains, with the slug of the
    mistake it shows (``special_tokens_merged`` when it comes from a special token's
    bytes, else ``merges_across_pretokens``), or None. Text is cut at each special token
    with ``str.split``, so overlapping special tokens are not supported."""
    pieces = [text]
    for s in special_tokens:
        pieces = [p for piece in pieces for p in piece.split(s)]
    inside = [t.encode("utf-8") for piece in pieces for t in regex.findall(GPT2_PATTERN, piece)]
    with_specials_left_in = [t.encode("utf-8") for t in regex.findall(GPT2_PATTERN, text)]
    for a, b in merges:
        token = a + b
        if not any(token in t for t in inside):
            from_special = any(token in t for t in with_specials_left_in) or any(
                token in s.encode("utf-8") for s in special_tokens
            )
            return ("special_tokens_merged" if from_special else "merges_across_pretokens"), token
    return None


# --- the figure ---------------------------------------------------------------------

FIGURE_WORDS = (" newest", " lowest")  # in CORPUS, and never seen in it


def _shown(token: bytes) -> str:
    return token.decode("utf-8", errors="replace").replace(" ", "␣")


def merge_steps(impl, vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]], word: str):
    """How ``impl``'s Tokenizer splits ``word`` with the first k merges, for every k that
    changes the split: [(k, [token bytes, ...]), ...], k = 0 for single bytes."""
    data, steps = word.encode("utf-8"), []
    for k in range(len(merges) + 1):
        if k and merges[k - 1][0] + merges[k - 1][1] not in data:
            continue  # a merge whose token is not in the word cannot change its split
        known = {i: b for i, b in vocab.items() if i < 256 + k}
        pieces = [known[i] for i in impl.Tokenizer(known, merges[:k]).encode(word)]
        if not steps or pieces != steps[-1][1]:
            steps.append((k, pieces))
    return steps


def figure(impl) -> Figure:
    """``impl``'s train_bpe learns merges from :data:`CORPUS`; then, for a word of the
    corpus and one it never saw, ``impl``'s Tokenizer splits the word with the first
    k merges: one row each time a merge changes the split."""
    from matplotlib.patches import Rectangle

    vocab, merges = impl.train_bpe(CORPUS, 300)
    vocab = {int(i): bytes(b) for i, b in vocab.items()}
    merges = [(bytes(a), bytes(b)) for a, b in merges]
    fig, axes = new_figure(10.0, 3.8, ncols=2)
    for ax, word, note in zip(axes, FIGURE_WORDS, ("in the training text", "never seen in training")):
        steps = merge_steps(impl, vocab, merges, word)
        for row, (k, pieces) in enumerate(steps):
            new = merges[k - 1][0] + merges[k - 1][1] if k else None
            x = 0
            for piece in pieces:
                ax.add_patch(
                    Rectangle(
                        (x + 0.05, -row - 0.38),
                        len(piece) - 0.1,
                        0.76,
                        facecolor="#34a853" if piece == new else "#dfe3e8",
                        edgecolor="#5f6368",
                    )
                )
                ax.text(x + len(piece) / 2, -row, _shown(piece), ha="center", va="center", fontsize=9)
                x += len(piece)
        labels = [
            "bytes" if not k else f"merge {k}: {_shown(merges[k - 1][0])} + {_shown(merges[k - 1][1])}"
            for k, _ in steps
        ]
        ax.set_xlim(0, len(word.encode("utf-8")))
        ax.set_ylim(-len(steps) + 0.5, 0.5)
        ax.set_yticks([-row for row in range(len(steps))], labels, fontsize=8)
        ax.set_xticks([])
        for side in ("top", "right", "bottom", "left"):
            ax.spines[side].set_visible(False)
        n = len(steps[-1][1])
        ax.set_title(f"{_shown(word.encode('utf-8'))} ({note}): {n} token{'s' * (n != 1)}", fontsize=10)
    size = len(CORPUS.encode("utf-8"))
    fig.suptitle(f"Your BPE, trained on {size} bytes of text (green: the merge just applied)", fontsize=10)
    return png(fig), (
        "How your tokenizer splits ' newest' and ' lowest' after each merge your train_bpe learned"
    )
