"""Mutant: the vocabulary holds the training words and <unk>, but not </s>.

Misconception: </s> is padding, not a word. But the model predicts </s> at the end of
every sentence, so it needs its place in the vocabulary: V is one too small, and
</s> itself is looked up as an unknown word.
"""

_NGramLM = NGramLM


class NGramLM(_NGramLM):
    def _vocabulary(self, sentences):
        return sorted({word for sentence in sentences for word in sentence} | {UNK})
