"""Mutant: n-gram counts found by scanning lists, once per distinct hypothesis n-gram.

Misconception: counting is a loop over the list. It gives the right numbers, but each
n-gram scans every n-gram of the hypothesis and of each reference: quadratic in the
sentence length, where one Counter per sentence is linear.
"""


def _sentence_statistics(hypothesis, references, max_n):
    def grams(tokens):
        return [tuple(tokens[i : i + n]) for n in range(1, max_n + 1) for i in range(len(tokens) - n + 1)]

    hyp_grams = grams(hypothesis)
    ref_grams = [grams(r) for r in references]
    matches, totals = [0] * max_n, [0] * max_n
    done = []
    for gram in hyp_grams:
        totals[len(gram) - 1] += 1
        if gram in done:
            continue
        done.append(gram)
        in_hyp = len([g for g in hyp_grams if g == gram])
        in_refs = max(len([g for g in grams_of_ref if g == gram]) for grams_of_ref in ref_grams)
        matches[len(gram) - 1] += min(in_hyp, in_refs)
    ref_len = _closest_reference_length(len(hypothesis), [len(r) for r in references])
    return len(hypothesis), ref_len, matches, totals
