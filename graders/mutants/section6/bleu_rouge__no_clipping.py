"""Mutant: every hypothesis n-gram found in a reference counts as matched, however often
it repeats.

Misconception: precision is "how many of my n-grams appear in a reference". Then "the
the the the" scores 100% unigram precision against "the cat"; BLEU clips each count at
the most any one reference holds.
"""


def _sentence_statistics(hypothesis, references, max_n):
    hyp_counts = _ngram_counts(hypothesis, max_n)
    ref_counts = _max_reference_counts(references, max_n)
    matches = [0] * max_n
    totals = [0] * max_n
    for gram, count in hyp_counts.items():
        n = len(gram) - 1
        totals[n] += count
        if gram in ref_counts:
            matches[n] += count
    ref_len = _closest_reference_length(len(hypothesis), [len(r) for r in references])
    return len(hypothesis), ref_len, matches, totals
