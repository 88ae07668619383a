"""Exercise 7.3 — a KV cache for incremental decoding (reference solution).

Same API as the stub: ``KVCache``, ``CachedSelfAttention``, ``generate_greedy``; the
RoPE helper, the decoder around the attention and ``generate_from_weights`` are the
stub's given code, unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ROPE_BASE = 10000.0


def apply_rope(x: torch.Tensor, positions: torch.Tensor, base: float = ROPE_BASE) -> torch.Tensor:
    """Given complete (as in the stub): x (B, H, t, D) rotated at positions (B, t), half-split layout."""
    half = x.shape[-1] // 2
    inv_freq = base ** (-2.0 * torch.arange(half, dtype=torch.float64) / x.shape[-1])
    angles = positions.to(torch.float64)[:, None, :, None] * inv_freq
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class KVCache:
    def __init__(self, batch: int, max_len: int, n_heads: int, head_dim: int, dtype=torch.float32):
        self.batch, self.max_len, self.n_heads, self.head_dim = batch, max_len, n_heads, head_dim
        self.k = torch.zeros(batch, n_heads, max_len, head_dim, dtype=dtype)
        self.v = torch.zeros(batch, n_heads, max_len, head_dim, dtype=dtype)

    def write(self, positions: torch.Tensor, k_new: torch.Tensor, v_new: torch.Tensor) -> None:
        positions = torch.as_tensor(positions)
        if positions.numel() and (int(positions.min()) < 0 or int(positions.max()) >= self.max_len):
            raise ValueError(
                f"KV cache overflow: positions {int(positions.min())}..{int(positions.max())} do not fit "
                f"in max_len={self.max_len} (slots 0..{self.max_len - 1})"
            )
        rows = torch.arange(self.batch)[:, None]  # (B, 1) against positions (B, t)
        self.k[rows, :, positions] = k_new.transpose(1, 2).to(self.k.dtype)  # slots take (B, t, H, D)
        self.v[rows, :, positions] = v_new.transpose(1, 2).to(self.v.dtype)


class CachedSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, rope: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")
        self.d_model, self.n_heads, self.head_dim, self.rope = d_model, n_heads, d_model // n_heads, rope
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.o_proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, start_pos=0) -> torch.Tensor:
        b, t, d = x.shape

        def heads(y):
            return y.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        start = torch.as_tensor(start_pos, dtype=torch.long).reshape(-1).expand(b)
        positions = start[:, None] + torch.arange(t)  # (B, t): where each new token sits
        if self.rope:
            q, k = apply_rope(q, positions), apply_rope(k, positions)
        if cache is None:
            keys, values = k, v
            key_pos = positions  # (B, t)
        else:
            cache.write(positions, k, v)  # first write, then read: each token sees itself
            end = int(positions.max()) + 1
            keys, values = cache.k[:, :, :end], cache.v[:, :, :end]
            key_pos = torch.arange(end).expand(b, end)
        allowed = key_pos[:, None, None, :] <= positions[:, None, :, None]  # (B, 1, t, keys)
        scores = q @ keys.transpose(-2, -1) / self.head_dim**0.5
        weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
        out = (weights @ values).transpose(1, 2).reshape(b, t, d)
        return self.o_proj(out)


def generate_greedy(model, prompt_ids, max_new_tokens: int, use_cache: bool = True) -> torch.Tensor:
    rows = [torch.as_tensor(p, dtype=torch.long).reshape(-1) for p in prompt_ids]
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    if len(rows) == 0 or int(lengths.min()) < 1:
        raise ValueError("every prompt needs at least one token")
    batch, longest = len(rows), int(lengths.max())
    out = torch.zeros(batch, max_new_tokens, dtype=torch.long)
    if max_new_tokens == 0:
        return out
    ids = torch.zeros(batch, longest + max_new_tokens, dtype=torch.long)  # right-padded with 0
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    every_row = torch.arange(batch)
    with torch.no_grad():
        caches = model.new_caches(batch, longest + max_new_tokens) if use_cache else None
        logits = model(ids[:, :longest], caches, 0)
        last = logits[every_row, lengths - 1]  # each row's own last prompt token
        positions = lengths.clone()  # where each row's next token goes
        for step in range(max_new_tokens):
            token = last.argmax(dim=-1)
            out[:, step] = token
            if step == max_new_tokens - 1:
                break
            ids[every_row, positions] = token
            if use_cache:
                last = model(token[:, None], caches, positions)[:, 0]
            else:
                last = model(ids[:, : int(positions.max()) + 1])[every_row, positions]
            positions = positions + 1
    return out


# --- given complete (as in the stub) ---------------------------------------------


class DecoderLayer(nn.Module):
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
    vocab, d_model = weights["embed.weight"].shape
    n_layers = sum(1 for name in weights if name.endswith(".ln1.weight"))
    d_ff = weights["layers.0.up.weight"].shape[0]
    model = TinyDecoder(vocab, d_model, n_heads, n_layers, d_ff).to(weights["embed.weight"].dtype)
    model.load_state_dict(weights)
    return generate_greedy(model.eval(), prompt_ids, max_new_tokens, use_cache)
