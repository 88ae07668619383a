"""Mutant: ROUGE-Lsum computed as ROUGE-L on the whole text, newlines ignored.

Misconception: "Lsum is ROUGE-L for summaries", and a summary is one long token list.
rougeLsum splits both texts into sentences at newlines and, for each target sentence,
unions its LCS with every predicted sentence: sentence order stops mattering.
"""


def rouge_lsum(pred, target):
    return rouge_l(pred, target)
