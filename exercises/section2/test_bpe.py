"""Public tests for exercise 2.1 (BPE tokenizer). Run: pytest exercises/section2

These check the basics on small, fixed examples. The hidden graders check much
more: random unicode corpora, tie-breaking, special tokens, GPT-2's own
vocabulary against tiktoken, streaming memory and speed.
"""

import pytest

from llmkit.testing import CheckFailure, load_support

pytestmark = pytest.mark.exercise("2.1")
support = load_support("2.1")

CORPUS = (
    "low low low low low lower lower widest widest widest newest newest newest newest newest newest\n"
    "the cat sat on the mat. The cat's hat? 42 cats! naïve café 😀😀\n"
)
# train_bpe(CORPUS, 300)'s merges: a snapshot, computed once with the graders' simple trainer
# (it recounts every pair after every merge) and pasted here.
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


def check_equal(got, want, what, hint=None):
    if got != want:
        raise CheckFailure(f"{what}:\n  got      {got!r}\n  expected {want!r}", hint=hint)


def test_first_merges(impl):
    vocab, merges = impl.train_bpe(CORPUS, 262)
    check_equal(
        merges[:3],
        [(b"s", b"t"), (b"e", b"st"), (b"o", b"w")],  # (s, t) and (e, s) tie at 9; (o, w) and (l, o) at 7
        "the first three merges",
        hint="pre-tokenize with GPT2_PATTERN, count pairs inside pre-tokens (weighted by how often the "
        "pre-token occurs), take the most frequent; ties go to the greatest (left, right) pair",
    )
    check_equal(vocab[256], b"st", "vocab[256] (the first merge)")
    check_equal(vocab[65], b"A", "vocab[65]", hint="ids 0..255 are the single bytes: vocab[i] == bytes([i])")


def test_merges_match_a_simple_trainer(impl):
    vocab, merges = impl.train_bpe(CORPUS, 300)
    check_equal(merges, MERGES_300, "merges for vocab_size=300")
    check_equal(vocab, VOCAB_300, "vocab for vocab_size=300")


def test_special_tokens_are_never_merged(impl):
    text = ("hello world<|endoftext|>" * 5) + "<|endoftext|><|endoftext|>"
    vocab, merges = impl.train_bpe(text, 264, ["<|endoftext|>"])
    check_equal(len(merges), 7, "len(merges) for vocab_size=264 with one special token")
    check_equal(
        vocab.get(263), b"<|endoftext|>", "vocab[263], the special token (ids: bytes, merges, specials)"
    )
    check_equal(
        [m for m in merges if b"|" in m[0] + m[1]],
        [],
        "merges built from the special token's bytes",
        hint="split the text at special tokens before pre-tokenizing",
    )


def test_encode_matches_tiktoken(impl):
    tok = impl.Tokenizer(dict(VOCAB_300), list(MERGES_300), ["<|endoftext|>"])
    enc = support.tiktoken_encoding({**VOCAB_300, 300: b"<|endoftext|>"}, ["<|endoftext|>"])
    text = "the newest cats sat lower<|endoftext|> café 😀!"
    check_equal(tok.encode(text), enc.encode(text, allowed_special="all"), f"encode({text!r})")


def test_decode_round_trip_and_split_characters(impl):
    tok = impl.Tokenizer(dict(VOCAB_300), list(MERGES_300))
    text = "naïve 日本 😀 lower  \n\twidest"
    check_equal(tok.decode(tok.encode(text)), text, "decode(encode(text))")
    raw = list("日".encode())  # three single-byte tokens of one character
    check_equal(tok.decode(raw), "日", f"decode({raw})", hint="join the bytes first, then decode once")
    check_equal(tok.decode(raw[:2]), "\ufffd", f"decode({raw[:2]})", hint="use errors='replace'")


def test_encode_iterable(impl):
    tok = impl.Tokenizer(dict(VOCAB_300), list(MERGES_300), ["<|endoftext|>"])
    chunks = ["the cat", "'s hat<|endo", "ftext|>lower\n", "\n", "\nwidest"]
    got = tok.encode_iterable(iter(chunks))
    if isinstance(got, list):
        raise CheckFailure("encode_iterable returned a list; it must be lazy (use yield)")
    check_equal(list(got), tok.encode("".join(chunks)), f"list(encode_iterable({chunks!r}))")


def test_gpt2_vocabulary(impl):
    data = support.gpt2_vocab_and_merges()
    if data is None:
        pytest.skip(support.gpt2_missing())
    tok = impl.Tokenizer(*data, ["<|endoftext|>"])
    check_equal(tok.encode("Hello, world!<|endoftext|>"), [15496, 11, 995, 0, 50256], "GPT-2 ids")
