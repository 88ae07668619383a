"""Mutant: a confidence on a bin edge goes to the bin below, bins (lower, upper].

Misconception: bin i is "between edges i and i + 1", and either side may hold the
edge. Guo et al. (2017) and scikit-learn's calibration_curve close bins on the right;
torchmetrics, the convention here, closes them on the left: [lower, upper).
"""


def expected_calibration_error(probs, labels, n_bins=15):
    confidences, predictions = probs.max(dim=1)
    confidences = confidences.to(torch.float32)
    correct = (predictions == labels).to(torch.float64)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float32)
    bins = (torch.bucketize(confidences, edges) - 1).clamp(min=0, max=n_bins - 1)
    counts = torch.bincount(bins, minlength=n_bins).to(torch.float64)
    conf_sums = torch.bincount(bins, weights=confidences.to(torch.float64), minlength=n_bins)
    correct_sums = torch.bincount(bins, weights=correct, minlength=n_bins)
    return float((correct_sums - conf_sums).abs().sum() / counts.sum())
