"""Mutant: when two references are equally close to the hypothesis length, the longer
one sets r.

Misconception: "closest" has no tie rule worth stating, so min() over (distance, -length)
or a loop keeping the last of equals looks as good as any. sacrebleu (like nltk)
takes the shorter, which penalises a short hypothesis less.
"""


def _closest_reference_length(hyp_len, ref_lens):
    return min(ref_lens, key=lambda r: (abs(r - hyp_len), -r))
