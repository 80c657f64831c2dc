"""A weighted calibration table (``sklearn.calibration.calibration_curve`` takes no ``sample_weight``)."""

from __future__ import annotations

import numpy as np

from dsprior.priors.checks import (
    check_binary,
    check_weights,
)


def weighted_calibration(
    labels: np.ndarray,
    probabilities: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    n_bins: int = 10,
) -> dict[str, np.ndarray]:
    """Mean predicted vs weighted observed positive rate in bins of equal weight.

    Equal-weight (quantile) bins because at a 1:100 prior almost every
    probability falls in the first of ten uniform bins.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    labels = check_binary(labels)
    p = np.asarray(probabilities, dtype=np.float64)
    weights = check_weights(weights, len(labels))
    order = np.argsort(p, kind="stable")
    p, y, w = p[order], labels[order], weights[order]
    cum = np.cumsum(w)
    if len(cum) == 0 or cum[-1] <= 0:
        raise ValueError("weighted_calibration needs positive total weight")
    bins = np.minimum((cum - w / 2) / cum[-1] * n_bins, n_bins - 1).astype(int)
    sums_w = np.bincount(bins, weights=w, minlength=n_bins)
    keep = sums_w > 0
    mean_pred = np.bincount(bins, weights=w * p, minlength=n_bins)[keep] / sums_w[keep]
    observed = np.bincount(bins, weights=w * y, minlength=n_bins)[keep] / sums_w[keep]
    return {"predicted": mean_pred, "observed": observed, "weight": sums_w[keep] / cum[-1]}
