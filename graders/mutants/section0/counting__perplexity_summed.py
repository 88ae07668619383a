"""Mutant: perplexity = exp of the summed negative log-likelihood.

Misconception: the log-likelihood of a text is a sum, so is perplexity's exponent.
Perplexity is per token: exp of the mean, or it explodes with the length of the text
and two texts of different lengths cannot be compared.
"""

_NGramLM = NGramLM


class NGramLM(_NGramLM):
    def perplexity(self, sentences):
        nll = 0.0
        for sentence in sentences:
            padded = [BOS] * (self.n - 1) + list(sentence) + [EOS]
            for i in range(self.n - 1, len(padded)):
                nll -= math.log(self.prob(padded[i], padded[i - self.n + 1 : i]))
        return math.exp(nll)
