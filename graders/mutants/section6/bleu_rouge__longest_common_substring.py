"""Mutant: ROUGE-L (and Lsum) from the longest common substring, a contiguous run of
tokens, instead of the longest common subsequence.

Misconception: "longest common sequence" read as the longest shared stretch of text.
A subsequence may skip tokens: "the cat sat" and "the big cat sat" share 3, not 2.
"""


def _lcs_positions(target, pred):
    best_len, best_end = 0, 0
    previous = [0] * (len(pred) + 1)
    for i in range(1, len(target) + 1):
        current = [0] * (len(pred) + 1)
        for j in range(1, len(pred) + 1):
            if target[i - 1] == pred[j - 1]:
                current[j] = previous[j - 1] + 1
                if current[j] > best_len:
                    best_len, best_end = current[j], i
        previous = current
    return list(range(best_end - best_len, best_end))
