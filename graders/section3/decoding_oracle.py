"""Grader-only oracle for exercise 3.2: beam search as the stub defines it, written
with plain Python lists over an NGramLM table (it would hand the learner the
algorithm, so it does not ship). Used for beams narrower than the vocabulary, where
no enumeration can say what the beam keeps.
"""

from __future__ import annotations

import torch


def _next_logprobs(table: torch.Tensor, seq: tuple[int, ...], pad: int = 0) -> list[float]:
    context = table.dim() - 1
    row = table
    if context:
        padded = (pad,) * max(0, context - len(seq)) + seq
        row = table[padded[len(padded) - context :]]
    return torch.log_softmax(row.to(torch.float64), dim=-1).tolist()


def beam_search_oracle(
    table: torch.Tensor, bos: int, eos: int, beam_width: int, max_len: int, length_penalty: float = 1.0
) -> tuple[list[int], float]:
    """(tokens, score) of the stub's beam search: every live hypothesis extended by every
    token, the beam_width best candidates by raw log-probability kept, a kept candidate
    ending in eos (or reaching max_len) finished; the finished one with the best
    log_prob / n ** length_penalty returned (n generated tokens, eos included)."""
    live: list[tuple[float, tuple[int, ...]]] = [(0.0, (bos,))]
    finished: list[tuple[float, list[int]]] = []
    for t in range(1, max_len + 1):
        candidates = [
            (logprob + step, seq + (token,))
            for logprob, seq in live
            for token, step in enumerate(_next_logprobs(table, seq))
        ]
        candidates.sort(key=lambda candidate: candidate[0], reverse=True)
        live = []
        for logprob, seq in candidates[:beam_width]:
            if seq[-1] == eos or t == max_len:
                finished.append((logprob / t**length_penalty, list(seq[1:])))
            else:
                live.append((logprob, seq))
        if not live:
            break
    score, tokens = max(finished, key=lambda item: item[0])
    return tokens, score
