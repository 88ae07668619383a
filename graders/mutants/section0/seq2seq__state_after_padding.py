"""Mutant: the encoder runs nn.GRU over the padded batch and the decoder starts from h_n.

Misconception: nn.GRU's h_n is "the encoder's last state". On a right-padded batch it is
the state after the padding too: every shorter row's s_0 has read its pad tokens, so a
sentence decodes differently depending on the longest sentence in its batch.
"""


class Seq2Seq(Seq2Seq):
    def encode(self, src, src_mask):
        outputs, last = self.encoder(self.src_emb(src))
        return outputs, last[0]
