"""Mutant: precision divides the overlap by the target's count and recall by the
prediction's.

Misconception: "precision: how much of the reference I got". It is how much of what I
predicted is right (over the prediction); recall is how much of the target I covered.
The slip is easy with rouge_score, whose score() takes the target first.
"""


def _precision_recall_f(overlap, n_pred, n_target):
    precision = overlap / n_target if n_target else 0.0
    recall = overlap / n_pred if n_pred else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f
