"""Exercise 7.3 — a KV cache for incremental decoding.

A decoder generates one token at a time. Without a cache, every new token runs the
whole sequence through the model again; with one, each attention layer keeps the keys
and values of the tokens it has already seen, and a new token only computes its own.
You write three things:

* ``KVCache`` — preallocated keys and values of one attention layer, per batch row;
* ``CachedSelfAttention`` — causal multi-head self-attention with RoPE that reads and
  writes such a cache: a *prefill* call takes many tokens (t > 1), a *decode* call one;
* ``generate_greedy`` — greedy decoding, with the cache or by recomputing everything,
  for a batch of prompts of different lengths.

Replace every ``raise NotImplementedError`` with your implementation, then run

    pytest exercises/section7/test_kv_cache.py      (or: llmkit check 7.3)

Given complete below (do not change them; the tests use them): ``apply_rope``,
``DecoderLayer`` and ``TinyDecoder`` (a small decoder built from your attention and
cache), and ``generate_from_weights``. Nothing is banned: any torch function is fine,
``F.scaled_dot_product_attention`` included (mind its ``is_causal``, see
``CachedSelfAttention``).

Conventions:

* Positions. Token i of a sequence sits at position i (from 0). A call of
  ``CachedSelfAttention`` whose first token is at ``start_pos`` holds positions
  ``start_pos, start_pos + 1, ..., start_pos + t - 1``; its tokens are written to those
  slots of the cache, and they are the positions RoPE rotates them by.
* Per-row positions. ``start_pos`` is an int (every row at the same position) or an
  int64 tensor of shape (B,) (row b starts at ``start_pos[b]``): rows of one batch may
  be at different positions, as when prompts differ in length.
* RoPE: the half-split layout (as in Llama and GPT-NeoX, not the interleaved one):
  feature j (j < D/2) and feature j + D/2 form a pair, rotated by the angle
  ``position * 10000 ** (-2j / D)``. ``apply_rope`` does it; rotate the queries and the
  keys, before the keys go into the cache, never the values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ROPE_BASE = 10000.0


def apply_rope(x: torch.Tensor, positions: torch.Tensor, base: float = ROPE_BASE) -> torch.Tensor:
    """GIVEN COMPLETE. Rotary position embedding, half-split layout.

    x: (B, H, t, D) queries or keys (D even), any float dtype.
    positions: int64 (B, t), the position of each token of each row.
    Returns a new tensor like x: (x1, x2) = (x[..., :D/2], x[..., D/2:]) becomes
    (x1 cos - x2 sin, x1 sin + x2 cos), angles = positions * base ** (-2j / D).
    """
    half = x.shape[-1] // 2
    inv_freq = base ** (-2.0 * torch.arange(half, dtype=torch.float64) / x.shape[-1])
    angles = positions.to(torch.float64)[:, None, :, None] * inv_freq
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class KVCache:
    """The keys and values of one attention layer, preallocated for ``max_len`` positions.

    ``KVCache(batch, max_len, n_heads, head_dim, dtype=torch.float32)`` holds:
        k, v: tensors of shape (batch, n_heads, max_len, head_dim) and ``dtype``, zeros at
              first. Slot p of row b holds the (RoPE-rotated) key and the value of the
              token at position p of sequence b. Each row has its own slots: rows never
              share keys.
        batch, max_len, n_heads, head_dim: the sizes it was made with.

    ``write(positions, k_new, v_new)`` stores new keys and values:
        positions: int64 (batch, t); k_new, v_new: (batch, n_heads, t, head_dim).
        k_new[b, :, i] goes to slot positions[b, i] of row b (the same for v). A slot
        written before is overwritten.
        A position outside 0 .. max_len - 1 raises a ``ValueError`` whose message
        names max_len (e.g. "KV cache overflow: position 12 but max_len=12"), and
        nothing is written.
    """

    def __init__(self, batch: int, max_len: int, n_heads: int, head_dim: int, dtype=torch.float32):
        raise NotImplementedError

    def write(self, positions: torch.Tensor, k_new: torch.Tensor, v_new: torch.Tensor) -> None:
        raise NotImplementedError


class CachedSelfAttention(nn.Module):
    """Causal multi-head self-attention with RoPE and an optional KV cache.

    ``CachedSelfAttention(d_model, n_heads, rope=True)``; attributes (names matter: the
    tests load weights into them): q_proj, k_proj, v_proj, o_proj, each
    ``nn.Linear(d_model, d_model, bias=False)``. head_dim = d_model // n_heads; head h
    owns features h*head_dim .. (h+1)*head_dim - 1 (view (B, t, n_heads, head_dim)).

    ``forward(x, cache=None, start_pos=0) -> (B, t, d_model)``:
        x: (B, t, d_model), the t new tokens of each row.
        start_pos: int, or int64 (B,): the position of each row's first new token.
        cache: a ``KVCache`` for this layer, or None.

    With ``cache=None``, plain causal self-attention over the t tokens (token i sees
    tokens 0..i), rotated at positions start_pos + i.

    With a cache: the new tokens' keys and values are written to their slots (write
    first, then attend: a token sees itself), then each new token attends over the
    cache: the token at position p sees every slot 0..p of its own row, and nothing
    after p. That is a prefill when t > 1 (causal within the chunk, and the whole cache
    before it) and a decode step when t = 1 (every cached slot up to p). Careful:
    ``F.scaled_dot_product_attention(..., is_causal=True)`` with fewer queries than keys
    aligns its triangle top-left (query i sees keys 0..i), which is not this mask.

    A model run over a sequence in pieces (a prefill, then decode steps, each with the
    right start_pos and one cache) must give the same outputs as the whole sequence in
    one call without a cache: within 1e-5 in float32.
    Scores are q @ k^T / sqrt(head_dim). With rope=False, no rotation at all.
    """

    def __init__(self, d_model: int, n_heads: int, rope: bool = True):
        super().__init__()
        raise NotImplementedError

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, start_pos=0) -> torch.Tensor:
        raise NotImplementedError


def generate_greedy(model, prompt_ids, max_new_tokens: int, use_cache: bool = True) -> torch.Tensor:
    """Greedy decoding: each new token is the argmax of the logits at the last token so far.

    model: a ``TinyDecoder`` (below), or anything with its interface:
        ``model(ids (B, t), caches=None, start_pos=0) -> logits (B, t, vocab)`` and
        ``model.new_caches(batch, max_len) -> one KVCache per layer``.
    prompt_ids: a list of B 1-D int64 tensors, of different lengths (each at least 1
        token), or a (B, P) int64 tensor (every prompt P tokens long).
    max_new_tokens: how many tokens to generate for each row (0 or more).
    use_cache: True: one prefill of the prompts, then one decode step (t = 1) per new
        token with the cache. False: every new token runs the whole sequence so far
        through the model without a cache (slow, and the same answer).

    Returns int64 (B, max_new_tokens): the new tokens only, row b for prompt b. Every row
    gets exactly the tokens it would get if it were generated alone.

    Prompts of different lengths: right-pad them (any token, e.g. 0) into one (B, P)
    batch for the prefill. Row b's first new token comes from the logits at its own
    last prompt token (index len_b - 1), and its decode steps start at position len_b
    (start_pos as a (B,) tensor), overwriting the padding's slots in the cache; the
    causal mask keeps every row from seeing slots after its own position. Run without
    gradients (``torch.no_grad()``).
    """
    raise NotImplementedError


# --- given complete: a small decoder built from your attention and cache -------------


class DecoderLayer(nn.Module):
    """GIVEN COMPLETE. Pre-norm block: x + attn(ln1(x)), then x + down(gelu(up(ln2(x))))."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CachedSelfAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.up = nn.Linear(d_model, d_ff)
        self.down = nn.Linear(d_ff, d_model)

    def forward(self, x, cache=None, start_pos=0):
        x = x + self.attn(self.ln1(x), cache, start_pos)
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class TinyDecoder(nn.Module):
    """GIVEN COMPLETE. embed -> n_layers x DecoderLayer -> LayerNorm -> lm_head (no bias).

    No position embedding: positions enter through RoPE in each attention layer.
    ``forward(ids (B, t), caches=None, start_pos=0) -> logits (B, t, vocab)``: with
    ``caches`` (one KVCache per layer, from ``new_caches``) each layer reads and writes
    its own cache at start_pos."""

    def __init__(self, vocab: int, d_model: int, n_heads: int, n_layers: int, d_ff: int):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.embed = nn.Embedding(vocab, d_model)
        self.layers = nn.ModuleList(DecoderLayer(d_model, n_heads, d_ff) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab, bias=False)

    def new_caches(self, batch: int, max_len: int) -> list[KVCache]:
        dtype = self.lm_head.weight.dtype
        return [KVCache(batch, max_len, self.n_heads, self.head_dim, dtype) for _ in self.layers]

    def forward(self, ids, caches=None, start_pos=0):
        x = self.embed(ids)
        for i, layer in enumerate(self.layers):
            x = layer(x, None if caches is None else caches[i], start_pos)
        return self.lm_head(self.norm(x))


def generate_from_weights(weights, n_heads, prompt_ids, max_new_tokens, use_cache=True):
    """GIVEN COMPLETE. Build a TinyDecoder from a state dict (sizes read from its shapes),
    load it, and return ``generate_greedy(model, prompt_ids, max_new_tokens, use_cache)``.
    The graders call it to time and measure your generation in a process of its own."""
    vocab, d_model = weights["embed.weight"].shape
    n_layers = sum(1 for name in weights if name.endswith(".ln1.weight"))
    d_ff = weights["layers.0.up.weight"].shape[0]
    model = TinyDecoder(vocab, d_model, n_heads, n_layers, d_ff).to(weights["embed.weight"].dtype)
    model.load_state_dict(weights)
    return generate_greedy(model.eval(), prompt_ids, max_new_tokens, use_cache)
