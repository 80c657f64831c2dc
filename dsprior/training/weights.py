"""Balancing: the per-example loss weights, and the priors they leave the model at.

``balance: downsample`` trains on the thinned rows with unit weights.
``balance: weighted`` (with ``downsample.ratio: null``) trains on unthinned rows
with a weighted loss: ``loss_weight: example`` uses the manifest weights (the
model then sees the production prior, beta = 1), ``loss_weight: class`` uses
scikit-learn's balanced class weights. Weights are rescaled to mean 1, which
changes the step size, not the optimum. ``beta`` in ``train.json`` is always
``(sum of training weights / sum of production weights over negatives)`` divided
by the same ratio over positives: the fraction of production negatives the model
effectively saw, to plug into ``p = beta*p_s / (beta*p_s - p_s + 1)``.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from dsprior.training.params import BALANCE_MODES, LOSS_WEIGHTS


def training_weights(
    labels: np.ndarray, manifest_weight: np.ndarray, *, balance: str, loss_weight: str
) -> np.ndarray:
    """Per-example loss weights, rescaled to mean 1 (unit weights for ``downsample``)."""
    labels = np.asarray(labels)
    if balance not in BALANCE_MODES:
        raise ValueError(f"balance must be one of {list(BALANCE_MODES)}, got {balance!r}")
    if loss_weight not in LOSS_WEIGHTS:
        raise ValueError(f"loss_weight must be one of {list(LOSS_WEIGHTS)}, got {loss_weight!r}")
    if balance == "downsample":
        weights = np.ones(len(labels))
    elif loss_weight == "example":
        weights = np.asarray(manifest_weight, dtype=np.float64)
    else:
        classes = np.array([0, 1])
        if set(np.unique(labels)) != {0, 1}:
            raise ValueError("loss_weight='class' needs both labels in the training rows")
        per_class = compute_class_weight("balanced", classes=classes, y=labels)
        weights = per_class[labels.astype(int)]
    return weights / weights.mean()


def effective_beta(
    labels: np.ndarray, manifest_weight: np.ndarray, train_weight: np.ndarray
) -> float:
    """Fraction of production negatives the model effectively saw, relative to positives.

    ``manifest_weight`` counts how many production examples a kept row stands
    for; ``train_weight`` is how much the loss counted it.
    """
    labels = np.asarray(labels).astype(bool)
    m = np.asarray(manifest_weight, dtype=np.float64)
    t = np.asarray(train_weight, dtype=np.float64)
    if labels.all() or not labels.any():
        raise ValueError("effective_beta needs both positive and negative training rows")
    neg = t[~labels].sum() / m[~labels].sum()
    pos = t[labels].sum() / m[labels].sum()
    return float(neg / pos)


def training_prior(labels: np.ndarray, train_weight: np.ndarray) -> float:
    """Positive share of the training loss: the prior the model's scores are calibrated to."""
    labels = np.asarray(labels).astype(bool)
    t = np.asarray(train_weight, dtype=np.float64)
    return float(t[labels].sum() / t.sum())
