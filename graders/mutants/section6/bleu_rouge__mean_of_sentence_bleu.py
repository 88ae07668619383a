"""Mutant: corpus BLEU as the average of the sentences' BLEU (score, precisions and
brevity penalty each averaged).

Misconception: a corpus metric is the mean of a per-sentence metric, as accuracy is.
BLEU pools the counts and lengths over the corpus first: a short sentence with no
4-gram match drags the mean down far more than it moves the pooled precisions.
"""


def corpus_bleu(hypotheses, references, max_n=4, smooth="exp"):
    _check_bleu_arguments(hypotheses, references, max_n, smooth)
    rows = []
    for hypothesis, refs in zip(hypotheses, references):
        h, r, m, t = _sentence_statistics(hypothesis, refs, max_n)
        rows.append(_bleu_from_statistics(h, r, m, t, max_n, smooth))
    k = len(rows)
    score = sum(row[0] for row in rows) / k
    precisions = [sum(row[1][n] for row in rows) / k for n in range(max_n)]
    bp = sum(row[2] for row in rows) / k
    return score, precisions, bp
