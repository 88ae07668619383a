"""Mutant: the noise distribution is the unigram frequency itself (power 1, the 3/4 ignored).

Misconception: negatives should be drawn "as often as words occur". Mikolov et al.
raise the counts to the power 3/4 first, which gives rare words more negatives than
their frequency; the `power` argument is there to be used.
"""


def noise_distribution(counts, power=0.75):
    counts = np.asarray(counts, dtype=np.float64)
    return counts / counts.sum()  # the bug: counts ** power
