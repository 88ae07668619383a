"""Mutant: each step updates the GRU state first, then attends with the new state.

Misconception: attention is "looked up" after the recurrent step, as in Luong-style
decoders. Bahdanau's decoder attends with the previous state s_{t-1}, and the context
is an input of the step: here the GRU reads the previous step's context (zeros at
first) and the attention of step t already depends on that step's input token.
"""


class Seq2Seq(Seq2Seq):
    def _run(self, src, src_mask, next_input, steps):
        keys, state = self.encode(src, src_mask)
        context = torch.zeros_like(state)
        y = next_input(0, None)
        all_logits, all_weights = [], []
        for t in range(steps):
            state = self.decoder(torch.cat([self.tgt_emb(y), context], dim=-1), state)
            context, weights = additive_attention(state, keys, src_mask, self.W_q, self.W_k, self.v)
            logits = self.out(torch.cat([state, context], dim=-1))
            all_logits.append(logits)
            all_weights.append(weights)
            y = next_input(t + 1, logits)
        return torch.stack(all_logits, dim=1), torch.stack(all_weights, dim=1)

    def forward(self, src, src_mask, tgt_in, return_attention=False):
        steps = tgt_in.shape[1]
        logits, weights = self._run(src, src_mask, lambda t, _: tgt_in[:, t] if t < steps else None, steps)
        return (logits, weights) if return_attention else logits

    @torch.no_grad()
    def greedy_decode(self, src, src_mask, max_len, bos, eos):
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        tokens = []

        def next_input(t, logits):
            nonlocal done
            if logits is None:
                return torch.full((src.shape[0],), bos, dtype=torch.long)
            y = logits.argmax(dim=-1).masked_fill(done, eos)
            tokens.append(y)
            done = done | (y == eos)
            return y

        self._run(src, src_mask, next_input, max_len)
        return torch.stack(tokens, dim=1)
