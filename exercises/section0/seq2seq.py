"""Exercise 0.3 — seq2seq with additive (Bahdanau) attention.

Replace every ``raise NotImplementedError`` with your implementation, then run

    pytest exercises/section0/test_seq2seq.py      (or: llmkit check 0.3)

You build the attention of Bahdanau et al. (2015) and wire it into a GRU
encoder-decoder. Use torch's building blocks for the recurrent parts
(``nn.Embedding``, ``nn.GRU``, ``nn.GRUCell``, ``nn.Linear``, ``torch.softmax``,
``nn.utils.rnn.pack_padded_sequence``, ...): the exercise is the attention and the
wiring. Banned here (a static scan and a runtime trap enforce it):
``F.scaled_dot_product_attention``, which would do the masked softmax and the
weighted average for you.

Conventions (they are what the tests check):

* Padding is on the right. ``src_mask`` is a bool tensor (B, S): True on a row's real
  tokens, False on its padding, so row b is True on positions 0 .. len_b - 1 and
  False after; every row has at least one real token. The ids at padded positions
  can be anything: a correct model never reads them.
* Token ids are int64. ``bos`` / ``eos`` are arguments, not fixed ids.
"""

from __future__ import annotations

import torch
from torch import nn


def additive_attention(
    query: torch.Tensor,
    keys: torch.Tensor,
    mask: torch.Tensor | None,
    W_q: torch.Tensor,
    W_k: torch.Tensor,
    v: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Additive (Bahdanau) attention of one query per batch row over S keys.

    Shapes (one dtype, float32 or float64, for every float tensor):
        query: (B, Hd)     the decoder state that asks
        keys:  (B, S, He)  the encoder outputs, one per source position
        mask:  (B, S) bool, True = a real position, False = padding; or None (no padding)
        W_q:   (A, Hd)     projects the query (A: the attention size)
        W_k:   (A, He)     projects the keys
        v:     (A,)
        returns (context (B, He), weights (B, S)), in query's dtype.

    The score of position j in row b is

        e[b, j] = v . tanh(W_q @ query[b] + W_k @ keys[b, j])

    (with batches: ``query @ W_q.T`` is (B, A), ``keys @ W_k.T`` is (B, S, A)).
    The weights are the softmax of each row's scores over its real positions: they
    sum to 1 along S, and are exactly 0 on padding. Scores can be large (hundreds or
    more): the weights must stay finite (torch.softmax is stable; if you write your
    own, subtract each row's maximum before exp()). The context is the weighted
    average of the keys: context[b] = sum_j weights[b, j] * keys[b, j].

    Gradients flow to every float input (torch autograd).
    """
    raise NotImplementedError


class Seq2Seq(nn.Module):
    """A GRU encoder and a GRU decoder that attends over the encoder's outputs.

    Attributes (names and shapes matter: the tests load weights into them with
    ``load_state_dict``, strict, so keep exactly these parameters and no others):
        src_emb: nn.Embedding(src_vocab, emb_dim)
        tgt_emb: nn.Embedding(tgt_vocab, emb_dim)
        encoder: nn.GRU(emb_dim, hidden, batch_first=True)   (one layer, one direction)
        decoder: nn.GRUCell(emb_dim + hidden, hidden)         (input: [embedding ; context])
        W_q:     nn.Parameter (hidden, hidden)  } the attention's parameters, for
        W_k:     nn.Parameter (hidden, hidden)  } additive_attention(state, encoder
        v:       nn.Parameter (hidden,)         } outputs, src_mask, W_q, W_k, v)
        out:     nn.Linear(2 * hidden, tgt_vocab)               (input: [state ; context])
    so that ``state_dict()`` has the keys src_emb.weight, tgt_emb.weight,
    encoder.{weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0},
    decoder.{weight_ih, weight_hh, bias_ih, bias_hh}, W_q, W_k, v, out.weight, out.bias.
    Initialise W_q, W_k and v like the GRUs' weights (uniform in ±1/sqrt(hidden)).

    The model, for a source x_1 .. x_n (n = the row's real length):

        h_j = GRU(src_emb(x_j), h_{j-1}), h_0 = 0          encoder outputs h_1 .. h_n
        s_0 = h_n                                          the state after the last REAL token
        at each decoder step t = 1, 2, ... with input token y_{t-1}:
            c_t, a_t = additive_attention(s_{t-1}, h, src_mask, W_q, W_k, v)
            s_t = decoder([tgt_emb(y_{t-1}) ; c_t], s_{t-1})
            logits_t = out([s_t ; c_t])

    The decoder attends with its PREVIOUS state s_{t-1}; ``[a ; b]`` is
    ``torch.cat([a, b], dim=-1)``, in that order.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, emb_dim: int, hidden: int):
        super().__init__()
        raise NotImplementedError

    def forward(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor,
        tgt_in: torch.Tensor,
        return_attention: bool = False,
    ):
        """Teacher forcing: the decoder reads ``tgt_in`` whatever it predicts.

        src: (B, S) int64; src_mask: (B, S) bool (see the module docstring);
        tgt_in: (B, T) int64, the decoder's input tokens y_0 .. y_{T-1} (y_0 is
        usually bos). Returns logits (B, T, tgt_vocab) in the model's dtype: row t
        scores the token that follows tgt_in[:, t]. With ``return_attention=True``,
        returns (logits, weights) where weights (B, T, S) holds a_t of every step.
        """
        raise NotImplementedError

    def greedy_decode(
        self, src: torch.Tensor, src_mask: torch.Tensor, max_len: int, bos: int, eos: int
    ) -> torch.Tensor:
        """Decode ``max_len`` steps, feeding back the argmax token, starting from ``bos``.

        Returns (B, max_len) int64, bos not included: column t is the token chosen
        at step t + 1. Once a row has produced ``eos`` it is finished: all its later
        positions are ``eos`` too (you may stop early when every row has finished,
        as long as the result still has max_len columns). No gradients needed.
        """
        raise NotImplementedError
