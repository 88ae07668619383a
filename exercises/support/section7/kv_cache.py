"""Support for exercise 7.3 (KV cache for incremental decoding): the oracles, the weights and
cases its tests draw, its named misconceptions and the figure.

The oracles run the whole sequence at once, without a cache: the projections with
``F.linear``, RoPE as a complex rotation (``torch.polar``) in float64, attention with
torch's ``F.scaled_dot_product_attention`` (``is_causal=True``, or an explicit mask for a
misconception), the decoder's norms and MLP with ``torch.nn.functional``. Greedy
generation recomputes the whole sequence for every token. Every variant below is that
oracle under another mask, other positions or other keys: what a mistaken cache would
have attended to, written without a cache.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from llmkit.checks import as_plain_tensor
from llmkit.figures import Figure, new_figure, png
from llmkit.testing import SEEDS, Draw, Misconception, Misconceptions, assert_close, describe_case

ROPE_BASE = 10000.0
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")

# --- weights ---------------------------------------------------------------------


def attention_weights(d_model: int, seed: int, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """A seeded state dict of ``CachedSelfAttention(d_model, n_heads)``: the four bias-free
    projections, (d_model, d_model) each, entries of standard deviation 1/sqrt(d_model)."""
    rng = Draw(seed)
    return {
        f"{name}.weight": rng.tensor(d_model, d_model, dtype=dtype, scale=d_model**-0.5)
        for name in PROJECTIONS
    }


def decoder_weights(
    vocab: int, d_model: int, n_layers: int, d_ff: int, seed: int, dtype=torch.float32
) -> dict[str, torch.Tensor]:
    """A seeded state dict of the stub's ``TinyDecoder``, with non-trivial norms and biases.

    The output head is scaled up (logits of standard deviation ~3) so that the greedy
    choice is rarely a near tie."""
    rng = Draw(seed)
    w: dict[str, torch.Tensor] = {"embed.weight": rng.tensor(vocab, d_model, dtype=dtype)}
    for i in range(n_layers):
        p = f"layers.{i}."
        w[p + "ln1.weight"] = 1 + 0.1 * rng.tensor(d_model, dtype=dtype)
        w[p + "ln1.bias"] = 0.1 * rng.tensor(d_model, dtype=dtype)
        for name, value in attention_weights(d_model, seed + 101 * (i + 1), dtype).items():
            w[p + "attn." + name] = value
        w[p + "ln2.weight"] = 1 + 0.1 * rng.tensor(d_model, dtype=dtype)
        w[p + "ln2.bias"] = 0.1 * rng.tensor(d_model, dtype=dtype)
        w[p + "up.weight"] = rng.tensor(d_ff, d_model, dtype=dtype, scale=d_model**-0.5)
        w[p + "up.bias"] = 0.1 * rng.tensor(d_ff, dtype=dtype)
        w[p + "down.weight"] = rng.tensor(d_model, d_ff, dtype=dtype, scale=d_ff**-0.5)
        w[p + "down.bias"] = 0.1 * rng.tensor(d_model, dtype=dtype)
    w["norm.weight"] = 1 + 0.1 * rng.tensor(d_model, dtype=dtype)
    w["norm.bias"] = 0.1 * rng.tensor(d_model, dtype=dtype)
    w["lm_head.weight"] = rng.tensor(vocab, d_model, dtype=dtype, scale=3.0 / math.sqrt(d_model))
    return w


def sub_weights(weights: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {name.removeprefix(prefix): t for name, t in weights.items() if name.startswith(prefix)}


# --- the attention oracle -----------------------------------------------------------


def rope(x: torch.Tensor, positions: torch.Tensor, base: float = ROPE_BASE) -> torch.Tensor:
    """RoPE in the half-split layout, as a complex rotation: feature j (j < D/2) and
    feature j + D/2 are the real and imaginary parts of one complex number, multiplied by
    exp(i * position * base^(-2j/D)). x (..., t, D); positions broadcastable to (..., t)."""
    half = x.shape[-1] // 2
    freq = base ** (-2.0 * torch.arange(half, dtype=torch.float64) / x.shape[-1])
    angles = torch.as_tensor(positions).to(torch.float64)[..., None] * freq
    z = torch.complex(x[..., :half].to(torch.float64), x[..., half:].to(torch.float64))
    z = z * torch.polar(torch.ones_like(angles), angles)
    return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)


def _heads(y: torch.Tensor, n_heads: int) -> torch.Tensor:
    b, t, d = y.shape
    return y.view(b, t, n_heads, d // n_heads).transpose(1, 2)


def attention(
    weights,
    n_heads: int,
    x: torch.Tensor,
    *,
    rope_on: bool = True,
    positions: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    kv_from: torch.Tensor | None = None,
    zero_keys: torch.Tensor | None = None,
) -> torch.Tensor:
    """Causal self-attention of the whole sequence ``x`` (B, T, d), no cache: what a cached
    module must return, token for token, however the sequence was split into calls.

    Token i sits at position i. The keyword arguments are there for the misconceptions:
    ``positions`` (B, T) rotate the tokens at other positions, ``mask`` (T, T) replaces
    the causal mask (True = may attend), ``kv_from`` takes keys and values from another
    input (B, T, d), ``zero_keys`` (T, T) bool blanks the key and value of key j for
    query i (scores 0, values 0) where it is True."""
    b, t, _ = x.shape
    src = x if kv_from is None else kv_from
    q = _heads(F.linear(x, weights["q_proj.weight"]), n_heads)
    k = _heads(F.linear(src, weights["k_proj.weight"]), n_heads)
    v = _heads(F.linear(src, weights["v_proj.weight"]), n_heads)
    if rope_on:
        pos = torch.arange(t).expand(b, t) if positions is None else positions
        q, k = rope(q, pos[:, None, :]), rope(k, pos[:, None, :])
    if mask is None and zero_keys is None:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    else:
        allowed = torch.ones(t, t, dtype=torch.bool).tril() if mask is None else mask
        if zero_keys is None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        else:  # one query at a time: each sees its own blanked keys
            rows = []
            for i in range(t):
                ki, vi = k.clone(), v.clone()
                ki[..., zero_keys[i], :], vi[..., zero_keys[i], :] = 0, 0
                rows.append(
                    F.scaled_dot_product_attention(q[..., i : i + 1, :], ki, vi, attn_mask=allowed[i : i + 1])
                )
            out = torch.cat(rows, dim=-2)
    merged = out.transpose(1, 2).reshape(b, t, -1)
    return F.linear(merged, weights["o_proj.weight"])


def chunk_starts(chunks) -> list[int]:
    """Where each call of a schedule starts: chunks (5, 1, 1, 3) -> [0, 5, 6, 7]."""
    starts, at = [], 0
    for n in chunks:
        starts.append(at)
        at += n
    return starts


# --- the decoder oracle --------------------------------------------------------------


def decoder_logits(weights, n_heads: int, ids: torch.Tensor) -> torch.Tensor:
    """The stub's TinyDecoder over whole sequences ``ids`` (B, T), no cache: logits (B, T, vocab)."""
    d_model = weights["embed.weight"].shape[1]
    x = F.embedding(ids, weights["embed.weight"])
    n_layers = sum(1 for name in weights if name.endswith(".ln1.weight"))
    for i in range(n_layers):
        w = sub_weights(weights, f"layers.{i}.")
        h = F.layer_norm(x, (d_model,), w["ln1.weight"], w["ln1.bias"])
        x = x + attention(sub_weights(w, "attn."), n_heads, h)
        h = F.layer_norm(x, (d_model,), w["ln2.weight"], w["ln2.bias"])
        x = x + F.linear(F.gelu(F.linear(h, w["up.weight"], w["up.bias"])), w["down.weight"], w["down.bias"])
    x = F.layer_norm(x, (d_model,), weights["norm.weight"], weights["norm.bias"])
    return F.linear(x, weights["lm_head.weight"])


def greedy(weights, n_heads: int, prompt_ids, max_new_tokens: int) -> torch.Tensor:
    """Greedy decoding by recomputing the whole sequence for every token, one row at a time
    when the prompts differ in length: the new tokens, (B, max_new_tokens) int64."""
    rows = [torch.as_tensor(p, dtype=torch.long).reshape(-1) for p in prompt_ids]
    if len({len(r) for r in rows}) > 1:
        return torch.cat([greedy(weights, n_heads, [r], max_new_tokens) for r in rows])
    ids = torch.stack(rows)
    new = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            token = decoder_logits(weights, n_heads, ids)[:, -1].argmax(dim=-1)
            new.append(token)
            ids = torch.cat([ids, token[:, None]], dim=1)
    return torch.stack(new, dim=1) if new else torch.zeros(len(rows), 0, dtype=torch.long)


def right_padded(prompt_ids, pad: int = 0) -> list[torch.Tensor]:
    """The prompts right-padded with ``pad`` to the longest one (for a misconception)."""
    rows = [torch.as_tensor(p, dtype=torch.long).reshape(-1) for p in prompt_ids]
    longest = max(len(r) for r in rows)
    return [torch.cat([r, torch.full((longest - len(r),), pad, dtype=torch.long)]) for r in rows]


# --- the cases the public tests and graders draw --------------------------------------


@st.composite
def incremental_case(draw_st, max_batch: int = 3, max_len: int = 12):
    """One attention module called over a sequence in pieces: d_model, n_heads, batch, the
    chunk lengths (a prefill, then decode steps of 1 and sometimes another chunk),
    spare cache room, rope on or off, and a value seed."""
    n_heads = draw_st(st.integers(1, 3))
    head_dim = draw_st(st.sampled_from([2, 4, 8]))
    prefill = draw_st(st.integers(1, max_len // 2))
    steps = draw_st(st.lists(st.sampled_from([1, 1, 1, 2, 3]), min_size=1, max_size=max_len - prefill))
    return dict(
        d_model=n_heads * head_dim,
        n_heads=n_heads,
        batch=draw_st(st.integers(2, max_batch)),
        chunks=(prefill, *steps),
        spare=draw_st(st.integers(0, 3)),
        rope=draw_st(st.sampled_from([True, True, True, False])),
        seed=draw_st(SEEDS),
    )


def describe(c, dtype=torch.float32) -> str:
    return describe_case(
        "CachedSelfAttention",
        d_model=c["d_model"],
        n_heads=c["n_heads"],
        rope=c["rope"],
        batch=c["batch"],
        calls=f"chunks of {list(c['chunks'])} tokens (prefill, then decode)",
        max_len=sum(c["chunks"]) + c["spare"],
        dtype=dtype,
    )


def run_in_pieces(impl, c, weights, x: torch.Tensor) -> torch.Tensor:
    """The learner's module called over ``x`` (B, T, d) chunk after chunk, with one cache:
    the outputs joined along the sequence, (B, T, d)."""
    attn = impl.CachedSelfAttention(c["d_model"], c["n_heads"], rope=c["rope"]).to(x.dtype)
    attn.load_state_dict(weights)
    cache = impl.KVCache(
        x.shape[0], sum(c["chunks"]) + c["spare"], c["n_heads"], c["d_model"] // c["n_heads"], x.dtype
    )
    outs = []
    for start, n in zip(chunk_starts(c["chunks"]), c["chunks"]):
        outs.append(as_plain_tensor(attn(x[:, start : start + n], cache, start)))
    return torch.cat(outs, dim=1)


def pieces_case_inputs(c, dtype=torch.float32):
    """(weights, x) of an :func:`incremental_case`: x (batch, T, d_model), rows distinct."""
    weights = attention_weights(c["d_model"], c["seed"], dtype)
    x = Draw(c["seed"] + 1).tensor(c["batch"], sum(c["chunks"]), c["d_model"], dtype=dtype)
    return weights, x


def expected_cache(shape, dtype, writes, *, shared: bool = False) -> torch.Tensor:
    """What ``KVCache(*shape).k`` holds after ``writes``, a list of (positions (B, t),
    k_new (B, H, t, D)), written one slot at a time in plain loops. ``shared``: one row
    that every row writes in turn, read by all (a misconception)."""
    batch, n_heads, max_len, head_dim = shape
    k = torch.zeros(batch, n_heads, max_len, head_dim, dtype=dtype)
    for positions, k_new in writes:
        for b in range(batch):
            for i in range(positions.shape[1]):
                k[0 if shared else b, :, int(positions[b, i])] = k_new[b, :, i]
    return k[:1].expand_as(k) if shared else k


@st.composite
def ragged_case(draw_st, max_prefill: int = 8):
    """Rows of one batch at different positions: a right-padded prefill of ``prefill``
    tokens, then a call of ``t`` tokens where row b starts at ``starts[b]`` (<= prefill:
    it overwrites the padding's slots), then one decode step."""
    n_heads = draw_st(st.integers(1, 3))
    head_dim = draw_st(st.sampled_from([2, 4, 8]))
    batch = draw_st(st.integers(2, 4))
    prefill = draw_st(st.integers(1, max_prefill))
    starts = draw_st(st.lists(st.integers(1, prefill), min_size=batch, max_size=batch))
    return dict(
        d_model=n_heads * head_dim,
        n_heads=n_heads,
        batch=batch,
        prefill=prefill,
        starts=starts,
        t=draw_st(st.integers(1, 3)),
        rope=draw_st(st.sampled_from([True, True, False])),
        seed=draw_st(SEEDS),
    )


def ragged_inputs(c, dtype=torch.float32):
    """(weights, rows, padded, chunk, step) of a :func:`ragged_case`: ``rows[b]`` is row b's
    whole sequence (starts[b] + t + 1 tokens, (1, T_b, d)); ``padded`` (B, prefill, d) the
    prefill, row b's first starts[b] tokens followed by junk; ``chunk`` (B, t, d) each
    row's next t tokens; ``step`` (B, 1, d) each row's token after those."""
    rng = Draw(c["seed"])
    weights = attention_weights(c["d_model"], c["seed"] + 7, dtype)
    t, d = c["t"], c["d_model"]
    rows = [rng.tensor(1, s + t + 1, d, dtype=dtype) for s in c["starts"]]
    padded = rng.tensor(c["batch"], c["prefill"], d, dtype=dtype)  # the junk after each prompt
    for b, s in enumerate(c["starts"]):
        padded[b, :s] = rows[b][0, :s]
    chunk = torch.stack([row[0, s : s + t] for row, s in zip(rows, c["starts"])])
    step = torch.stack([row[0, s + t : s + t + 1] for row, s in zip(rows, c["starts"])])
    return weights, rows, padded, chunk, step


def describe_ragged(c, dtype=torch.float32) -> str:
    return describe_case(
        "CachedSelfAttention",
        d_model=c["d_model"],
        n_heads=c["n_heads"],
        rope=c["rope"],
        calls=f"a prefill of {c['prefill']} right-padded tokens at 0, then {c['t']} token(s) at "
        f"start_pos={c['starts']}, then 1 at start_pos={[s + c['t'] for s in c['starts']]}",
        dtype=dtype,
    )


GEN_SIZES = dict(vocab=24, d_model=16, d_ff=32)


@st.composite
def prompts_case(draw_st, max_rows: int = 3, max_prompt: int = 8, max_new: int = 6):
    """Greedy decoding of a batch of prompts of different lengths by a small TinyDecoder."""
    lengths = draw_st(st.lists(st.integers(1, max_prompt), min_size=1, max_size=max_rows))
    return dict(
        lengths=lengths,
        max_new_tokens=draw_st(st.integers(1, max_new)),
        n_layers=draw_st(st.integers(1, 2)),
        n_heads=draw_st(st.sampled_from([1, 2, 4])),
        seed=draw_st(SEEDS),
    )


def prompts_inputs(c, dtype=torch.float64):
    """(weights, prompts) of a :func:`prompts_case`: a list of 1-D int64 tensors."""
    weights = decoder_weights(
        GEN_SIZES["vocab"], GEN_SIZES["d_model"], c["n_layers"], GEN_SIZES["d_ff"], c["seed"], dtype
    )
    gen = Draw(c["seed"] + 3).generator
    prompts = [torch.randint(1, GEN_SIZES["vocab"], (n,), generator=gen) for n in c["lengths"]]
    return weights, prompts


def describe_prompts(c, use_cache) -> str:
    return describe_case(
        "generate_greedy",
        f"prompts of lengths {c['lengths']}",
        max_new_tokens=c["max_new_tokens"],
        use_cache=use_cache,
        model=f"TinyDecoder(vocab={GEN_SIZES['vocab']}, d_model={GEN_SIZES['d_model']}, "
        f"n_heads={c['n_heads']}, n_layers={c['n_layers']}, d_ff={GEN_SIZES['d_ff']}), float64",
    )


# --- misconceptions: what each mistake returns, from the whole-sequence oracle ---------


def _local_positions(chunks, batch):
    return torch.cat([torch.arange(n) for n in chunks]).expand(batch, -1)


def _rope_at_zero(weights, n_heads, x, chunks, rope_on=True):
    """Every call rotates its tokens at 0, 1, ..., t-1: queries and the keys it caches."""
    return attention(weights, n_heads, x, rope_on=rope_on, positions=_local_positions(chunks, x.shape[0]))


def _top_left_mask(weights, n_heads, x, chunks, rope_on=True):
    """Each call's mask is a t x (start + t) slice of tril(ones): query i of a call starting
    at s sees keys 0..i, not 0..s+i (what is_causal=True does when Lq < Lk)."""
    t = x.shape[1]
    allowed = torch.zeros(t, t, dtype=torch.bool)
    for s, n in zip(chunk_starts(chunks), chunks):
        allowed[s : s + n, : s + n] = torch.ones(n, s + n, dtype=torch.bool).tril()
    return attention(weights, n_heads, x, rope_on=rope_on, mask=allowed)


def _read_before_write(weights, n_heads, x, chunks, rope_on=True):
    """Each call attends over the cache before its own keys are in it: the slots of the
    call's tokens still hold zeros (score 0, value 0)."""
    t = x.shape[1]
    blank = torch.zeros(t, t, dtype=torch.bool)
    for s, n in zip(chunk_starts(chunks), chunks):
        blank[s : s + n, s : s + n] = True
    return attention(weights, n_heads, x, rope_on=rope_on, zero_keys=blank)


def _shared_across_rows(weights, n_heads, x, chunks, rope_on=True):
    """One cache row for the whole batch, holding what the last row wrote: every row's
    queries meet the last row's keys and values."""
    return attention(weights, n_heads, x, rope_on=rope_on, kv_from=x[-1:].expand_as(x))


def _pads_read_as_prompt(weights, n_heads, prompt_ids, max_new_tokens):
    """Right-padded prompts decoded as if the padding (token 0) were part of them."""
    return greedy(weights, n_heads, right_padded(prompt_ids), max_new_tokens)


MISCONCEPTIONS = Misconceptions(
    "exercises/section7/README.md",
    Misconception(
        "rope_at_zero",
        "RoPE at position 0 for every new token",
        "a call that starts at start_pos rotates its tokens at start_pos, start_pos + 1, ..., "
        "not 0, 1, ...: positions = start_pos + arange(t), for the queries and for the keys it caches",
        readme="7.3 — Positions of the new tokens",
        variants={"attention in pieces": _rope_at_zero},
    ),
    Misconception(
        "prefill_mask_at_decode",
        "the prefill's causal mask reused at decode",
        "query i of a call sits at position start_pos + i and may see every cached key up to it: "
        "key j is visible iff j <= start_pos + i (is_causal=True with fewer queries than keys "
        "aligns the triangle top-left and hides the cache)",
        readme="7.3 — The mask at decode",
        variants={"attention in pieces": _top_left_mask},
    ),
    Misconception(
        "read_before_write",
        "the cache read before the new keys are written",
        "write the call's keys and values into the cache first, then attend over it: "
        "each new token must see itself and the tokens before it in the same call",
        readme="7.3 — Write, then read",
        variants={"attention in pieces": _read_before_write},
    ),
    Misconception(
        "shared_across_rows",
        "one cache shared by every row of the batch",
        "the cache holds keys and values per row, (batch, n_heads, max_len, head_dim): "
        "row b writes and reads cache.k[b] only",
        readme="7.3 — One cache row per sequence",
        variants={
            "attention in pieces": _shared_across_rows,
            "KVCache.write": lambda shape, dtype, writes: expected_cache(shape, dtype, writes, shared=True),
        },
    ),
    Misconception(
        "overflow_unchecked",
        "no check that the cache has room",
        "a write past max_len must raise a ValueError (or IndexError) that names max_len, "
        "before anything is written; torch's own error says nothing about the cache",
        readme="7.3 — A full cache",
    ),
    Misconception(
        "pads_read_as_prompt",
        "the padding read as part of a shorter prompt",
        "with prompts of different lengths, row b's first new token comes from the logits at its "
        "own last prompt token (index len_b - 1) and its decoding starts at position len_b",
        readme="7.3 — Prompts of different lengths",
        variants={"generate_greedy": _pads_read_as_prompt},
    ),
    Misconception(
        "recompute_every_step",
        "the whole sequence recomputed for every token",
        "with use_cache=True, prefill once, then feed only the newest token with start_pos",
        readme="7.3 — Speed and memory",
        kind="speed",
    ),
    Misconception(
        "quadratic_mask_buffer",
        "a (max_len, max_len) causal mask kept with the cache",
        "the mask of a call is (t, start_pos + t): build it from positions each call, "
        "never as a max_len x max_len matrix",
        readme="7.3 — Speed and memory",
        kind="memory",
    ),
)


# --- the figure ---------------------------------------------------------------------

FIG_SIZES = dict(vocab=64, d_model=64, n_layers=2, d_ff=128)
FIG_LENGTHS = (16, 64, 128, 256, 384)


def _best_time(fn, repeats: int = 5) -> float:
    """The fastest of ``repeats`` calls: the least disturbed by other work on the machine."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def figure(impl) -> Figure:
    """The learner's TinyDecoder (built on their attention and cache): the time of one new
    token with and without the cache against the sequence length, and how far the cached
    logits of a 48-token greedy run are from the same model recomputing everything."""
    n_heads = 4
    weights = decoder_weights(**FIG_SIZES, seed=5)
    model = impl.TinyDecoder(
        FIG_SIZES["vocab"], FIG_SIZES["d_model"], n_heads, FIG_SIZES["n_layers"], FIG_SIZES["d_ff"]
    )
    model.load_state_dict(weights)
    model.eval()
    ids = torch.randint(
        0, FIG_SIZES["vocab"], (1, max(FIG_LENGTHS) + 1), generator=torch.Generator().manual_seed(5)
    )
    cached_ms, full_ms = [], []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for length in FIG_LENGTHS:
                caches = model.new_caches(1, length + 1)
                model(ids[:, :length], caches, 0)
                step = ids[:, length : length + 1]
                cached_ms.append(1e3 * _best_time(lambda: model(step, caches, length)))
                full_ms.append(1e3 * _best_time(lambda: model(ids[:, : length + 1])))
            # one greedy run, cached, each step's logits against the whole sequence recomputed
            prompt, steps = ids[:, :8], 48
            caches = model.new_caches(1, 8 + steps)
            logits = model(prompt, caches, 0)[:, -1]
            seq, gaps = prompt, []
            for i in range(steps):
                recomputed = model(seq)[:, -1]
                gaps.append(float((as_plain_tensor(logits) - as_plain_tensor(recomputed)).abs().max()))
                token = recomputed.argmax(-1, keepdim=True)
                seq = torch.cat([seq, token], dim=1)
                logits = model(token, caches, 8 + i)[:, -1]
    finally:
        torch.set_num_threads(threads)
    fig, axes = new_figure(11.0, 3.8, ncols=2)
    ax = axes[0]
    ax.plot(FIG_LENGTHS, full_ms, "o-", color="#d93025", label="no cache: the whole sequence again")
    ax.plot(FIG_LENGTHS, cached_ms, "o-", color="#1a73e8", label="with your KV cache: one token")
    ax.set_xlabel("tokens already in the sequence")
    ax.set_ylabel("ms for the next token (best of 5, 1 thread)")
    ax.set_ylim(bottom=0)
    ratio = full_ms[-1] / max(cached_ms[-1], 1e-9)
    ax.set_title(f"Time per new token: {ratio:.1f}x faster with the cache at {FIG_LENGTHS[-1]}", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[1]
    floor = 1e-9  # a difference of exactly 0 is drawn here
    ax.semilogy(range(1, steps + 1), [max(g, floor) for g in gaps], ".-", color="#1a73e8")
    ax.axhline(1e-5, color="#5f6368", ls="--", lw=0.8)
    ax.text(steps * 0.6, 1.5e-5, "the tests' tolerance, 1e-5", fontsize=8, color="#5f6368")
    ax.set_ylim(floor / 2, max([1e-3] + [10 * g for g in gaps if math.isfinite(g)]))
    ax.set_xlabel("generated token")
    ax.set_ylabel("max |cached - recomputed| logit\n(a difference of 0 drawn at 1e-9)")
    ax.set_title("Your cached logits against recomputing everything (float32)", fontsize=10)
    caption = (
        "Time of one new token with and without the KV cache against the sequence length, and the largest "
        "difference between cached and recomputed logits at each step of a greedy run"
    )
    return png(fig), caption


def expect_overflow_error(call, what: str) -> None:
    """``call()`` must raise a ValueError or IndexError whose message names max_len."""
    try:
        call()
    except NotImplementedError:
        raise
    except (ValueError, IndexError) as exc:
        if "max_len" in str(exc):
            return
        raise MISCONCEPTIONS.failure(
            "overflow_unchecked",
            f"{what} raised {type(exc).__name__}({str(exc)[:200]!r}), whose message does not name max_len",
        ) from None
    except Exception as exc:  # noqa: BLE001 - any other error is the wrong one
        raise MISCONCEPTIONS.failure(
            "overflow_unchecked", f"{what} raised {type(exc).__name__}({str(exc)[:200]!r}), not a ValueError"
        ) from None
    raise MISCONCEPTIONS.failure("overflow_unchecked", f"{what} raised nothing")


def check_ragged_generation(impl, c, hint: str) -> None:
    """The learner's greedy generation on prompts of different lengths (``prompts_case``),
    with the cache and without, against the oracle's tokens, diagnosed by mistake."""
    weights, prompts = prompts_inputs(c)
    want = greedy(weights, c["n_heads"], prompts, c["max_new_tokens"])
    suspects = MISCONCEPTIONS.on("generate_greedy", weights, c["n_heads"], prompts, c["max_new_tokens"])
    for use_cache in (True, False):
        got = impl.generate_from_weights(weights, c["n_heads"], prompts, c["max_new_tokens"], use_cache)
        assert_close(
            as_plain_tensor(got),
            want,
            name=f"{describe_prompts(c, use_cache)}: the new tokens",
            hint=hint,
            suspects=suspects,
        )
