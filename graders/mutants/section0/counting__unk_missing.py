"""Mutant: unseen words are read as <unk>, but <unk> is not in the vocabulary.

Misconception: <unk> is only a label for lookups. It is also an outcome the model
must give probability to, so it counts in V: without it V is one too small and the
probabilities of the vocabulary no longer sum to 1.
"""

_NGramLM = NGramLM


class NGramLM(_NGramLM):
    def _vocabulary(self, sentences):
        return sorted({word for sentence in sentences for word in sentence} | {EOS})
