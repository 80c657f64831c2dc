"""Per-example weights rescaled to a chosen production prior, and the prior estimated from weights."""

from __future__ import annotations

import logging

import numpy as np

from dsprior.priors.checks import (
    check_binary,
    check_rate,
    check_weights,
)
from dsprior.priors.correction import odds

logger = logging.getLogger(__name__)


def estimate_prior(labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted positive fraction: the population prior that the weights restore."""
    labels = check_binary(labels)
    weights = check_weights(weights, len(labels))
    total = weights.sum()
    if total <= 0:
        raise ValueError("cannot estimate a prior from zero total weight")
    return float(np.dot(labels, weights) / total)


def weights_at_prior(
    labels: np.ndarray, weights: np.ndarray | None = None, *, prior: float | None
) -> np.ndarray:
    """Rescale negative weights so that the weighted positive fraction equals ``prior``.

    Relative weights within each class are kept (so sources thinned at different
    rates stay in proportion); only the class balance moves. ``prior=None``
    returns the weights unchanged. With unit input weights every negative gets
    Siblini's ratio ``r = pi_s (1 - pi) / (pi (1 - pi_s))``.
    """
    labels = check_binary(labels)
    weights = check_weights(weights, len(labels)).copy()
    if prior is None:
        return weights
    prior = check_rate("prior", prior)
    positive = labels == 1
    pos_total, neg_total = weights[positive].sum(), weights[~positive].sum()
    if pos_total <= 0 or neg_total <= 0:
        logger.warning("cannot move to prior %.4g: one class has zero weight", prior)
        return weights
    weights[~positive] *= (pos_total / neg_total) * odds(1.0 - prior)
    return weights


def weights_at_prior_rows(
    labels: np.ndarray, weights: np.ndarray, *, prior: float | None
) -> np.ndarray:
    """``weights_at_prior`` for each row of a ``[k, n]`` weight matrix.

    A row in which one class has zero weight is left unchanged, as
    ``weights_at_prior`` leaves such weights (without a warning per row).
    """
    weights = np.array(np.atleast_2d(weights), dtype=np.float64)
    if prior is None:
        return weights
    prior = check_rate("prior", prior)
    positive = check_binary(labels) == 1
    pos_total = weights @ positive.astype(np.float64)
    neg_total = weights @ (~positive).astype(np.float64)
    ok = (pos_total > 0) & (neg_total > 0)
    factor = np.ones(len(weights))
    factor[ok] = pos_total[ok] / neg_total[ok] * odds(1.0 - prior)
    weights[:, ~positive] *= factor[:, None]
    return weights
