"""Mutant: (count + k) / count(context), with k added to the numerator only.

Misconception: smoothing means "add k to the count". It adds k to each of the V
counts, so the denominator grows by k * V; otherwise the probabilities after a
context sum to more than 1 (and an unseen context divides by zero).
"""

_NGramLM = NGramLM


class NGramLM(_NGramLM):
    def prob(self, word, context=()):
        context = self._context(context)
        count = self.counts.get(context + (self._lookup(word),), 0)
        return (count + self.k) / self.context_counts[context]
