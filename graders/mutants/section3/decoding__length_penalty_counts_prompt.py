"""Mutant: beam search normalises by the length of the whole sequence, bos included.

Misconception: len(sequence) is at hand and looks like "the length"; but the prompt
(here bos) was not generated, so a hypothesis of n new tokens is divided by
(n + 1) ** length_penalty, and hypotheses of different lengths are ranked differently.
"""


def beam_search(step_fn, bos, eos, beam_width, max_len, length_penalty=1.0):
    live = torch.tensor([[bos]], dtype=torch.long)
    live_logp = torch.zeros(1, dtype=torch.float64)
    finished = []
    for t in range(1, max_len + 1):
        logp = torch.log_softmax(step_fn(live).to(torch.float64), dim=-1)
        vocab = logp.shape[-1]
        candidates = (live_logp[:, None] + logp).flatten()
        best, index = candidates.topk(min(beam_width, candidates.numel()))
        tokens = index % vocab
        seqs = torch.cat([live[index // vocab], tokens[:, None]], dim=1)
        done = (tokens == eos) | (t == max_len)
        for seq, logprob in zip(seqs[done].tolist(), best[done].tolist()):
            finished.append((logprob / len(seq) ** length_penalty, seq[1:]))
        live, live_logp = seqs[~done], best[~done]
        if live.shape[0] == 0:
            break
    score, tokens = max(finished, key=lambda item: item[0])
    return tokens, float(score)
