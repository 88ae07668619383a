"""Mutant: greedy decoding feeds back the argmax at every step, eos or not.

Misconception: max_len is the only stopping rule. After eos a row is finished, and
what the model says next is noise that downstream code would read as output.
"""


class Seq2Seq(Seq2Seq):
    @torch.no_grad()
    def greedy_decode(self, src, src_mask, max_len, bos, eos):
        keys, state = self.encode(src, src_mask)
        y = torch.full((src.shape[0],), bos, dtype=torch.long)
        tokens = []
        for _ in range(max_len):
            logits, state, _ = self.step(y, state, keys, src_mask)
            y = logits.argmax(dim=-1)
            tokens.append(y)
        return torch.stack(tokens, dim=1)
