"""Thresholds from costs: the Bayes threshold ``c_FP / (c_FP + c_FN)`` (Elkan 2001, eq. 2),
the cost curve over every threshold and the cost-minimising threshold; and the decision rule.

A threshold is kept as a probability for people, but decisions compare log-odds
(``decide_log_odds``): probabilities near 1 round together in floating point, log-odds
do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit
from sklearn.metrics import confusion_matrix_at_thresholds

from dsprior.priors.checks import (
    check_binary,
    check_costs,
    check_weights,
)
from dsprior.priors.confusion import (
    PER_EXAMPLES,
)


def bayes_threshold(*, cost_fp: float, cost_fn: float) -> float:
    """Bayes-optimal threshold on calibrated probabilities: ``c_FP / (c_FP + c_FN)``."""
    cost_fp, cost_fn = check_costs(cost_fp, cost_fn)
    return cost_fp / (cost_fp + cost_fn)


@dataclass(frozen=True)
class CostCurve:
    """Expected cost (per 1,000) of the rule ``score >= threshold`` at each cut, decreasing."""

    thresholds: np.ndarray
    costs: np.ndarray
    confusions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # tn, fp, fn, tp


def cost_curve(
    labels: np.ndarray,
    scores: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    cost_fp: float,
    cost_fn: float,
    per: float = PER_EXAMPLES,
) -> CostCurve:
    """Expected cost at every distinct score cut, plus the rule that flags nothing.

    Uses ``sklearn.metrics.confusion_matrix_at_thresholds``; the first entry has
    threshold ``+inf`` (no alerts), which sklearn's cuts do not include.
    """
    labels = check_binary(labels)
    scores = np.asarray(scores, dtype=np.float64)
    weights = check_weights(weights, len(labels))
    cost_fp, cost_fn = check_costs(cost_fp, cost_fn)
    if len(labels) == 0:
        raise ValueError("cost_curve needs at least one example")
    tns, fps, fns, tps, thresholds = confusion_matrix_at_thresholds(
        labels, scores, sample_weight=weights
    )
    neg_total, pos_total = fps[-1] + tns[-1], tps[-1] + fns[-1]
    tns = np.concatenate([[neg_total], tns])
    fps = np.concatenate([[0.0], fps])
    fns = np.concatenate([[pos_total], fns])
    tps = np.concatenate([[0.0], tps])
    thresholds = np.concatenate([[np.inf], thresholds])
    total = neg_total + pos_total
    costs = per * (fps * cost_fp + fns * cost_fn) / total
    return CostCurve(thresholds, costs, (tns, fps, fns, tps))


def cost_minimising_threshold(
    labels: np.ndarray,
    scores: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    cost_fp: float,
    cost_fn: float,
) -> tuple[float, float]:
    """Threshold minimising weighted expected cost, searched exactly over all score cuts.

    Returns ``(threshold, cost per 1,000)``. The threshold is the midpoint between
    the chosen cut and the next lower distinct score, so the rule
    ``score >= threshold`` reproduces the chosen cut on these data and does not
    hinge on one example's exact score when applied elsewhere. Ties go to the
    higher threshold (fewer alerts).
    """
    curve = cost_curve(labels, scores, weights, cost_fp=cost_fp, cost_fn=cost_fn)
    best = int(np.argmin(curve.costs))  # first minimum = highest threshold
    cut = curve.thresholds[best]
    lower = curve.thresholds[best + 1] if best + 1 < len(curve.thresholds) else None
    if np.isinf(cut):  # flag nothing: just above the highest score
        threshold = float(np.nextafter(curve.thresholds[1], np.inf))
    elif lower is None:  # flag everything: the lowest score itself
        threshold = float(cut)
    else:
        threshold = float((cut + lower) / 2.0)
    return threshold, float(curve.costs[best])


def threshold_log_odds(threshold: float) -> float:
    """A probability threshold as log-odds: ``logit(t)``; ``+inf`` (flags nothing) from 1 up."""
    t = float(threshold)
    if np.isnan(t):
        raise ValueError("threshold must be a number, got NaN")
    return float(np.inf) if t >= 1.0 else float(logit(max(t, 0.0)))


def decide_log_odds(log_odds: np.ndarray, *, threshold: float) -> np.ndarray:
    """1 where the log-odds reach ``logit(threshold)`` (the rule ``probability >= threshold``
    compared where it does not round): int8 decisions. A threshold of 1 or more flags nothing."""
    z = np.asarray(log_odds, dtype=np.float64)
    t = threshold_log_odds(threshold)
    if not np.isfinite(t) and t > 0:
        return np.zeros(z.shape, dtype=np.int8)
    return (z >= t).astype(np.int8)


def threshold_probability(cut: float, log_odds: np.ndarray) -> float:
    """The probability threshold whose decisions on ``log_odds`` are ``log_odds >= cut``.

    ``sigmoid(cut)`` rounds (a cut just above the top score may round onto it); it is moved
    by the least steps that make ``decide_log_odds`` reproduce the cut on these log-odds.
    Where no float64 probability can (both sides of the cut above log-odds ~36.7, where every
    probability is 1), the nearest one that flags fewer is taken.
    """
    z = np.asarray(log_odds, dtype=np.float64)
    want = int(np.count_nonzero(z >= cut))
    t = float(expit(cut))
    went_down = False
    for _ in range(64):
        got = int(decide_log_odds(z, threshold=t).sum())
        if got == want:
            return t
        if got > want:
            up = float(np.nextafter(t, np.inf))
            if went_down:  # stepped over the cut from below: no probability reproduces it
                return up
            t = up
        else:
            went_down = True
            t = float(np.nextafter(t, -np.inf))
    return t
