"""Weighted confusion counts and the rates, calibrated precision and expected cost read from them.

Siblini et al.'s (2020) calibrated precision cross-checks the weighted route; expected cost
is reported per 1,000 production examples (``PER_EXAMPLES``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix

from dsprior.priors.checks import (
    check_binary,
    check_costs,
    check_rate,
    check_weights,
)

PER_EXAMPLES = 1000  # expected cost and alert counts are reported per 1,000 production examples


@dataclass(frozen=True)
class Costs:
    """What one wrong decision costs: a false positive, a false negative (``evaluate.cost``).

    The math on arrays (``expected_cost``, ``bayes_threshold``) takes the two numbers, as
    ``cost_fp`` and ``cost_fn``; the evaluation code passes this object.
    """

    false_positive: float
    false_negative: float


@dataclass(frozen=True)
class Confusion:
    """Binary confusion counts; weighted counts are floats."""

    tn: float
    fp: float
    fn: float
    tp: float

    @property
    def total(self) -> float:
        return self.tn + self.fp + self.fn + self.tp

    def scaled(self, factor: float) -> Confusion:
        return Confusion(self.tn * factor, self.fp * factor, self.fn * factor, self.tp * factor)

    def as_dict(self) -> dict[str, float]:
        return {"tn": self.tn, "fp": self.fp, "fn": self.fn, "tp": self.tp}


def confusion(
    labels: np.ndarray, predicted: np.ndarray, weights: np.ndarray | None = None
) -> Confusion:
    """Weighted binary confusion counts via ``sklearn.metrics.confusion_matrix``."""
    labels = check_binary(labels)
    predicted = check_binary(predicted)
    weights = check_weights(weights, len(labels))
    tn, fp, fn, tp = confusion_matrix(
        labels, predicted, labels=[0, 1], sample_weight=weights
    ).ravel()
    return Confusion(float(tn), float(fp), float(fn), float(tp))


def _ratio(num, den):
    """``num / den``, NaN where ``den <= 0``; a float for scalars, an array for arrays."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast_shapes(num.shape, den.shape), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return float(out) if out.ndim == 0 else out


def confusion_rows(labels: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> Confusion:
    """Confusion counts for each row of a ``[k, n]`` weight matrix: a Confusion of arrays.

    ``rates``, ``expected_cost`` and ``production_terms`` accept it as they accept
    scalar counts. One matrix product per cell, for bootstrap resamples.
    """
    labels = check_binary(labels).astype(bool)
    predicted = check_binary(predicted).astype(bool)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if weights.shape[1] != len(labels) or len(predicted) != len(labels):
        raise ValueError(
            f"weights {weights.shape}, labels {len(labels)} and predicted {len(predicted)} "
            "must describe the same examples"
        )
    cell = {
        "tn": ~labels & ~predicted,
        "fp": ~labels & predicted,
        "fn": labels & ~predicted,
        "tp": labels & predicted,
    }
    return Confusion(**{name: weights @ mask.astype(np.float64) for name, mask in cell.items()})


def rates(cm: Confusion) -> dict[str, Any]:
    """Precision, recall, F1, FPR and LR+ of one confusion matrix (NaN where undefined).

    Floats for scalar counts; for a Confusion of arrays (``confusion_rows``) one array each.

    Used on weighted counts where sklearn's own functions would need the rows
    again (bootstrap resamples, the worked example); the stage's headline
    numbers come from sklearn and tests check the two agree.
    """
    precision = _ratio(cm.tp, cm.tp + cm.fp)
    recall = _ratio(cm.tp, cm.tp + cm.fn)
    fpr = _ratio(cm.fp, cm.fp + cm.tn)
    f1 = _ratio(2 * cm.tp, 2 * cm.tp + cm.fp + cm.fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "fpr": fpr,
        "lr_plus": _ratio(recall, fpr),
    }


def calibrated_precision(tp: float, fp: float, *, sample_prior: float, prior: float) -> float:
    """Siblini et al. (2020) calibrated precision ``TP / (TP + r FP)``.

    ``r = pi_s (1 - pi) / (pi (1 - pi_s))`` moves the false positives from the
    sample's positive fraction ``pi_s`` to the reference prior ``pi``.
    """
    pi_s = check_rate("sample_prior", sample_prior)
    pi = check_rate("prior", prior)
    r = pi_s * (1.0 - pi) / (pi * (1.0 - pi_s))
    return _ratio(tp, tp + r * fp)


def calibrated_f1(precision_c: float, recall: float) -> float:
    """Siblini's ``F_c = 2 prec_c rec / (prec_c + rec)``."""
    return _ratio(2 * precision_c * recall, precision_c + recall)


def expected_cost(
    cm: Confusion, *, cost_fp: float, cost_fn: float, per: float = PER_EXAMPLES
) -> float:
    """Cost of the errors in ``cm`` per ``per`` examples of the population ``cm`` weighs."""
    cost_fp, cost_fn = check_costs(cost_fp, cost_fn)
    return _ratio(per * (cm.fp * cost_fp + cm.fn * cost_fn), cm.total)


def production_terms(cm: Confusion, *, per: float = PER_EXAMPLES) -> dict[str, float]:
    """What a decision rule means per ``per`` examples: alerts, true alerts, missed positives."""
    return {
        "alerts": _ratio(per * (cm.tp + cm.fp), cm.total),
        "true_alerts": _ratio(per * cm.tp, cm.total),
        "false_alerts": _ratio(per * cm.fp, cm.total),
        "missed": _ratio(per * cm.fn, cm.total),
        "positives": _ratio(per * (cm.tp + cm.fn), cm.total),
    }
