"""Mutant: the brevity penalty's r is the longest reference of each sentence.

Misconception: "the hypothesis must not be shorter than the references", so compare it
with the longest. BLEU's r is the closest reference length: with several references a
hypothesis is not penalised for being shorter than all of them.
"""


def _closest_reference_length(hyp_len, ref_lens):
    return max(ref_lens)
