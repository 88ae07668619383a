"""Mutant: the confusion matrix with the judge on the rows and the human on the columns.

Misconception: judge_agreement takes the judge's scores first, so its labels went on the
rows. The human is the reference (scikit-learn's y_true): rows are the human's labels,
columns the judge's. Kappa and accuracy do not notice; the matrix is transposed.
"""


def judge_agreement(judge_scores, human_scores, labels=None, weights=None):
    judge, human = list(judge_scores), list(human_scores)
    labels = _label_order(human, judge, labels)
    matrix = _counts(judge, human, labels)
    return {
        "accuracy": float(np.trace(matrix) / matrix.sum()),
        "kappa": cohen_kappa(human, judge, labels, weights),
        "confusion_matrix": matrix,
        "labels": labels,
    }
