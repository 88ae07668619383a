"""Mutant: ECE is the plain mean of |accuracy - confidence| over the non-empty bins.

Misconception: every bin is one point of the reliability diagram, so each counts the
same. A bin holding 2 predictions then weighs as much as one holding 2,000: ECE
weights each bin by its share of the predictions, count / N.
"""


def expected_calibration_error(probs, labels, n_bins=15):
    confidences, predictions = probs.max(dim=1)
    confidences = confidences.to(torch.float32)
    correct = (predictions == labels).to(torch.float64)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float32)
    bins = (torch.bucketize(confidences, edges, right=True) - 1).clamp(max=n_bins - 1)
    counts = torch.bincount(bins, minlength=n_bins).to(torch.float64)
    conf_sums = torch.bincount(bins, weights=confidences.to(torch.float64), minlength=n_bins)
    correct_sums = torch.bincount(bins, weights=correct, minlength=n_bins)
    used = counts > 0
    return float(((correct_sums[used] - conf_sums[used]) / counts[used]).abs().mean())
