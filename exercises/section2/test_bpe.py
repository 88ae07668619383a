"""Public tests for exercise 2.1 (BPE tokenizer). Run: pytest exercises/section2

Training is checked on small fixed texts against merges pasted here (computed once with
the graders' simple trainer), and on random texts for the rules every correct trainer
keeps (the vocabulary's layout, merges inside pre-tokens, special tokens left alone).
Encoding, decoding and streaming are checked on random text against tiktoken. When a
check fails it says which known mistake your output looks like. The hidden graders
compare your merges with a trainer on many random corpora, and also check GPT-2's
vocabulary at length, memory and speed.
"""

import functools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmkit.testing import CheckFailure, check_equal, load_support

pytestmark = pytest.mark.exercise("2.1")
support = load_support("2.1")
mistakes = support.MISCONCEPTIONS
CORPUS, SPECIAL_TEXT, ENDOFTEXT = support.CORPUS, support.SPECIAL_TEXT, support.ENDOFTEXT

# train_bpe(CORPUS, 300)'s merges: a snapshot, computed once with the graders' simple
# trainer (it recounts every pair after every merge) and pasted here.
MERGES_300 = [
    (b"s", b"t"), (b"e", b"st"), (b"o", b"w"), (b"l", b"ow"), (b" ", b"n"), (b"w", b"est"),
    (b"e", b"west"), (b"a", b"t"), (b" n", b"ewest"), (b" ", b"low"), (b" ", b"c"), (b"w", b"i"),
    (b"wi", b"d"), (b"wid", b"est"), (b"h", b"e"), (b" c", b"at"), (b" ", b"widest"),
    (b"\xf0", b"\x9f"), (b"\xf0\x9f", b"\x98"), (b"\xf0\x9f\x98", b"\x80"), (b"t", b"he"),
    (b"e", b"r"), (b" low", b"er"), (b"\xf0\x9f\x98\x80", b"\xf0\x9f\x98\x80"), (b"\xc3", b"\xaf"),
    (b"\xc3\xaf", b"v"), (b"\xc3\xafv", b"e"), (b"\xc3", b"\xa9"), (b"s", b"at"), (b"o", b"n"),
    (b"m", b"at"), (b"h", b"at"), (b"f", b"\xc3\xa9"), (b"a", b"\xc3\xafve"), (b"a", b"f\xc3\xa9"),
    (b"T", b"he"), (b"4", b"2"), (b"'", b"s"), (b" n", b"a\xc3\xafve"), (b" cat", b"s"),
    (b" c", b"af\xc3\xa9"), (b" ", b"\xf0\x9f\x98\x80\xf0\x9f\x98\x80"), (b" ", b"the"), (b" ", b"sat"),
]  # fmt: skip
VOCAB_300 = {i: bytes([i]) for i in range(256)} | {256 + k: a + b for k, (a, b) in enumerate(MERGES_300)}
# train_bpe(SPECIAL_TEXT, 264, ["<|endoftext|>"]): 7 merges, then the special token as id 263.
SPECIAL_MERGES = [
    (b"w", b"o"), (b"wo", b"r"), (b"wor", b"l"), (b"worl", b"d"), (b"l", b"o"), (b"l", b"lo"), (b"h", b"e"),
]  # fmt: skip
# support.TIE_CASES: every merge below won a tie on count; the greatest (left, right) pair wins.
TIE_MERGES = {
    ("zy ab", 257): [(b"z", b"y")],  # (z, y) > (a, b) > (b" ", b"a"): bytes compare by value
    ("ab ba ab ba", 258): [(b"b", b"a"), (b"a", b"b")],
    ("abc bca cab", 259): [(b"c", b"a"), (b"ca", b"b"), (b"b", b"ca")],
    ("xabc xabc yab cyab", 262): [
        (b"a", b"b"), (b"y", b"ab"), (b"x", b"ab"), (b"xab", b"c"), (b"c", b"yab"), (b" ", b"yab"),
    ],
    ("hug pug pun bun hugs", 266): [
        (b"u", b"g"), (b"u", b"n"), (b"h", b"ug"), (b" ", b"p"), (b"hug", b"s"), (b"b", b"un"),
        (b" p", b"un"), (b" p", b"ug"), (b" ", b"hugs"), (b" ", b"bun"),
    ],
}  # fmt: skip

TRAIN_HINT = (
    "pre-tokenize with GPT2_PATTERN, count pairs inside pre-tokens (weighted by how often the "
    "pre-token occurs), take the most frequent; ties go to the greatest (left, right) pair of bytes"
)
ENCODE_HINT = (
    "cut at special tokens, pre-tokenize, then inside each pre-token merge the adjacent pair with "
    "the lowest rank (earliest in merges), again and again"
)
WORDS = sorted(set(CORPUS.split())) + [" newest", " lowest", " widest", "lower", "est"]


# --- training ----------------------------------------------------------------------


def train(impl, text, vocab_size, special_tokens=()):
    """The learner's (vocab, merges), after the rules every correct trainer keeps."""
    vocab, merges = impl.train_bpe(text, vocab_size, list(special_tokens))
    vocab = {int(i): bytes(b) for i, b in vocab.items()}
    merges = [(bytes(a), bytes(b)) for a, b in merges]
    check_rules(text, vocab_size, list(dict.fromkeys(special_tokens)), vocab, merges)
    return vocab, merges


def check_rules(text, vocab_size, specials, vocab, merges):
    call = f"train_bpe({text[:40]!r}{'...' if len(text) > 40 else ''}, {vocab_size}, {specials})"
    if len(vocab) > vocab_size:
        message = f"{call} returned {len(vocab)} tokens, more than vocab_size={vocab_size}"
        if specials and len(vocab) == vocab_size + len(specials):
            raise mistakes.failure("vocab_size_excludes_specials", message)
        raise CheckFailure(message)
    if [vocab.get(i) for i in range(256)] != [bytes([i]) for i in range(256)]:
        raise CheckFailure(f"{call}: ids 0..255 must be the single bytes, vocab[i] == bytes([i])")
    wrong = [k for k, (a, b) in enumerate(merges) if vocab.get(256 + k) != a + b]
    if wrong:
        k = wrong[0]
        raise CheckFailure(f"{call}: vocab[{256 + k}] is {vocab.get(256 + k)!r}, expected merges[{k}] joined")
    n = 256 + len(merges)
    check_equal(
        [vocab.get(n + i) for i in range(len(specials))],
        [s.encode("utf-8") for s in specials],
        name=f"{call}: the special tokens, ids {n}... (after the merges, in the order given)",
    )
    if sorted(vocab) != list(range(n + len(specials))):
        raise CheckFailure(f"{call}: the ids must be 0..{n + len(specials) - 1}, with no gaps")
    outside = support.merge_outside_pretokens(text, specials, merges)
    if outside:
        slug, token = outside
        raise mistakes.failure(
            slug, f"{call} learned the token {token!r}, which no pre-token of the text holds"
        )


def test_first_merges(impl):
    _, merges = train(impl, CORPUS, 262)
    check_equal(
        merges,
        MERGES_300[:6],  # (s, t) and (e, s) tie at 9; (o, w) and (l, o) at 7
        name="train_bpe(CORPUS, 262): the first six merges",
        hint=TRAIN_HINT,
        suspects=mistakes.on("train_bpe", CORPUS, 262),
    )


def test_merges_match_a_simple_trainer(impl):
    vocab, merges = train(impl, CORPUS, 300)
    check_equal(
        merges,
        MERGES_300,
        name="train_bpe(CORPUS, 300)'s merges",
        hint=TRAIN_HINT,
        suspects=mistakes.on("train_bpe", CORPUS, 300),
    )
    check_equal(vocab, VOCAB_300, name="train_bpe(CORPUS, 300)'s vocab")


def test_ties_go_to_the_greatest_pair(impl):
    for (text, vocab_size), want in TIE_MERGES.items():
        _, merges = train(impl, text, vocab_size)
        check_equal(
            merges,
            want,
            name=f"train_bpe({text!r}, {vocab_size})'s merges",
            hint="max(counts, key=lambda p: (counts[p], p)) with p a (bytes, bytes) tuple",
            suspects=mistakes.on("train_bpe", text, vocab_size),
        )


def test_special_tokens_are_never_merged(impl):
    _, merges = train(impl, SPECIAL_TEXT, 264, [ENDOFTEXT])
    check_equal(
        merges,
        SPECIAL_MERGES,
        name=f"train_bpe(SPECIAL_TEXT, 264, [{ENDOFTEXT!r}])'s merges",
        hint="split the text at special tokens before pre-tokenizing; they count in vocab_size",
        suspects=mistakes.on("train_bpe", SPECIAL_TEXT, 264, [ENDOFTEXT]),
    )


@settings(max_examples=10)
@given(
    text=support.corpora(specials=[ENDOFTEXT], max_fragments=30),
    extra=st.integers(0, 30),
    specials=st.sampled_from([[], [ENDOFTEXT]]),
)
@example(text="hello world<|endoftext|> hello", extra=5, specials=[ENDOFTEXT])
def test_training_rules_on_random_text(impl, text, extra, specials):
    train(impl, text, 256 + len(specials) + extra, specials)


def test_training_stops_and_size_limits(impl):
    _, merges = train(impl, "ab ab", 1000)
    check_equal(
        merges, [(b"a", b"b"), (b" ", b"ab")], name="train_bpe('ab ab', 1000): stop when no pair is left"
    )
    try:
        impl.train_bpe("abc", 256, ["<|x|>"])
    except ValueError:
        return
    raise CheckFailure(
        "train_bpe('abc', 256, ['<|x|>']) must raise ValueError: no room for the special token"
    )


# --- encoding and decoding -------------------------------------------------------------


@functools.cache
def encoding(specials=(ENDOFTEXT,)):
    """tiktoken with the CORPUS vocabulary and these special tokens (new ids from 300)."""
    return support.tiktoken_encoding(support.with_specials(VOCAB_300, specials), specials)


@settings(max_examples=15)
@given(text=support.corpora(specials=[ENDOFTEXT], max_fragments=30, words=WORDS))
@example(text=support.FREQUENCY_TEXT)
def test_encode_matches_tiktoken(impl, text):
    tok = impl.Tokenizer(dict(VOCAB_300), list(MERGES_300), [ENDOFTEXT])
    check_equal(
        [int(i) for i in tok.encode(text)],
        encoding().encode(text, allowed_special="all"),
        name=f"encode({text!r}) with train_bpe(CORPUS, 300)'s vocab",
        hint=ENCODE_HINT,
        suspects=mistakes.on("Tokenizer.encode", VOCAB_300, MERGES_300, [ENDOFTEXT], text),
    )


SPECIALS = ["<|endoftext|>", "<|pad|>", "[SEP]"]


@settings(max_examples=10)
@given(data=st.data(), specials=st.lists(st.sampled_from(SPECIALS), min_size=1, max_size=3, unique=True))
def test_special_tokens_missing_from_vocab(impl, data, specials):
    vocab, merges = dict(VOCAB_300), list(MERGES_300)
    tok = impl.Tokenizer(vocab, merges, list(specials))
    if vocab != VOCAB_300 or merges != MERGES_300:
        raise CheckFailure(
            "Tokenizer(vocab, merges, special_tokens) modified the vocab or merges it was given"
        )
    text = data.draw(support.corpora(specials=specials, max_fragments=20, words=WORDS), label="text")
    check_equal(
        [int(i) for i in tok.encode(text)],
        encoding(tuple(specials)).encode(text, allowed_special="all"),
        name=f"encode({text!r}) with special tokens {specials}, new ids from 300 in that order",
        hint="cut the text at special tokens first; each is one id; one missing from vocab gets the next id",
        suspects=mistakes.on("Tokenizer.encode", VOCAB_300, MERGES_300, specials, text),
    )


# How each text must be cut: special tokens (the longest wins where they overlap) and plain text.
OVERLAPS = [
    (["<|a|>", "<|a|><|a|>"], ["x", "<|a|><|a|>", "<|a|>", "y", "<|a|>"]),
    (["<s>", "<s></s>", "</s>"], ["a", "<s></s>", "b", "<s>", "c", "</s>", "<s></s>", "</s>"]),
    (["==", "==="], ["a", "===", "b", "===", "=c", "=="]),
]


def test_overlapping_special_tokens_longest_wins(impl):
    for specials, parts in OVERLAPS:
        text = "".join(parts)
        tok = impl.Tokenizer(dict(VOCAB_300), list(MERGES_300), list(specials))
        check_equal(
            [int(i) for i in tok.encode(text)],
            support.encode_parts(VOCAB_300, specials, parts),
            name=f"encode({text!r}) with special tokens {specials} (ids 300...): cut as {parts}",
            hint="where special tokens overlap the longest wins",
            suspects=mistakes.on("Tokenizer.encode", VOCAB_300, MERGES_300, specials, text),
        )


@settings(max_examples=15)
@given(
    text=st.text(support.no_surrogates, max_size=30),
    split=st.text(st.sampled_from(["日", "é", "😀", "a", " ", "ß"]), min_size=1, max_size=6),
    ids=st.lists(st.sampled_from(sorted(VOCAB_300)), max_size=6),
)
@example(text="naïve 日本 😀 lower", split="日é", ids=[256])
def test_decode(impl, text, split, ids):
    tok = impl.Tokenizer(dict(VOCAB_300), list(MERGES_300))
    encoded = [int(i) for i in tok.encode(text)]
    check_equal(
        tok.decode(encoded),
        text,
        name=f"decode(encode({text!r})), encode giving {encoded}",
        hint="join all the bytes, then decode once",
        suspects=mistakes.on("Tokenizer.decode", VOCAB_300, encoded),
    )
    ids = ids + list(split.encode("utf-8"))[:-1]  # ids 0..255 are bytes: the last character is cut
    want = b"".join(VOCAB_300[i] for i in ids).decode("utf-8", errors="replace")
    try:
        got = tok.decode(ids)
    except Exception as exc:
        if support.is_unicode_decode_error(exc):
            raise mistakes.failure(
                "decode_strict", f"decode({ids}) raised {type(exc).__name__}: {exc}"
            ) from None
        raise
    check_equal(
        got,
        want,
        name=f"decode({ids})",
        hint="join all the bytes, then .decode('utf-8', errors='replace') once",
        suspects=mistakes.on("Tokenizer.decode", VOCAB_300, ids),
    )


STREAM_SPECIALS = (ENDOFTEXT, "<|pad|>")
streams = support.corpora(specials=STREAM_SPECIALS, max_fragments=20, words=WORDS).flatmap(support.chunked)


@settings(max_examples=15)
@given(chunks=streams)
@example(chunks=["the cat", "'s hat<|endo", "ftext|>lower\n", "\n", "\nwidest", " newest<|pad", "|>"])
def test_encode_iterable(impl, chunks):
    tok = impl.Tokenizer(dict(VOCAB_300), list(MERGES_300), list(STREAM_SPECIALS))
    got = tok.encode_iterable(iter(chunks))
    if isinstance(got, list):
        raise CheckFailure("encode_iterable returned a list; it must be lazy (use yield)")
    check_equal(
        [int(i) for i in got],
        encoding(STREAM_SPECIALS).encode("".join(chunks), allowed_special="all"),
        name=f"list(encode_iterable({chunks!r}))",
        hint="the ids must equal encode(''.join(chunks)) wherever the chunks are cut",
        suspects=mistakes.on("Tokenizer.encode_iterable", VOCAB_300, MERGES_300, STREAM_SPECIALS, chunks),
    )


GPT2_RANKS = 5256  # GPT-2 after its first 5,000 merges: its ids, a fraction of the set-up time


@functools.cache
def gpt2_tokenizer(impl):
    impl.Tokenizer(dict(VOCAB_300), list(MERGES_300))  # a stub stops here, before GPT-2 loads
    data = support.gpt2_vocab_and_merges(GPT2_RANKS)
    if data is None:
        pytest.skip(support.gpt2_missing())
    vocab, merges = data
    return impl.Tokenizer(dict(vocab), list(merges), [ENDOFTEXT])


@settings(max_examples=8)
@given(text=support.corpora(specials=[ENDOFTEXT], max_fragments=20))
@example(text="Hello, world!<|endoftext|> The quick brown fox")
def test_gpt2_vocabulary(impl, text):
    tok = gpt2_tokenizer(impl)
    check_equal(
        [int(i) for i in tok.encode(text)],
        support.gpt2_encoding(GPT2_RANKS).encode(text, allowed_special="all"),
        name=f"encode({text!r}) with GPT-2's first 5,000 merges (ids are not in byte order)",
        hint="look ids up by bytes: GPT-2's id for b'!' is 0, not 33",
    )
