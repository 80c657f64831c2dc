"""The records of each ``dvc plots`` picture: one file per picture, its series in a ``series`` column.

Series names are as a reader sees them in the legends (dvc plots colour by them; see
.dvc/plots/), so no plot is titled by a path. Curves are thinned to about
``CURVE_POINTS`` points, because the plot files are kept in git.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from dsprior import priors
from dsprior.evaluation.inputs import SPLITS, Split
from dsprior.evaluation.measures import (
    View,
    decisions_at,
    log_odds_at_prior,
    ranking_scores,
    view_weights,
)
from dsprior.evaluation.record import Metrics

SENSITIVITY_SERIES: tuple[Literal["precision", "recall"], ...] = ("precision", "recall")
CURVE_POINTS = 200  # plot files are kept in git: curves are thinned to about this many points
SERIES = {
    ("dev_a", "sample"): "dev_a as sampled",
    ("dev_a", "prior"): "dev_a projected to the production prior",
    ("dev_b", "prior"): "dev_b at the production prior",
    ("test", "prior"): "test at the production prior",
}
PR_SERIES: tuple[tuple[Split, View], ...] = (
    ("dev_a", "sample"),
    ("dev_a", "prior"),
    ("test", "prior"),
)
PR_SHIPPED, PR_CHOSEN = "shipped rule (raw score >= 0.5)", "threshold chosen on dev_b"


def _thin_on_grid(thresholds: np.ndarray, keep: int, points: int = CURVE_POINTS) -> np.ndarray:
    """Indices of an ascending threshold array, about evenly spaced in threshold from 0 to 1.

    Most examples score near 0, so thinning by index would leave the few cuts worth
    reading (0.01 to 1) with a handful of points; index ``keep`` (the minimum) stays.
    """
    grid = np.linspace(0.0, 1.0, points)
    picked = np.searchsorted(thresholds, grid, side="left").clip(0, len(thresholds) - 1)
    return np.unique(np.concatenate([picked, [0, len(thresholds) - 1, keep]]))


def _thin_along(x: np.ndarray, y: np.ndarray, points: int = CURVE_POINTS) -> np.ndarray:
    """Indices of a curve in the unit square, about evenly spaced along its length.

    Thinning by index keeps points where examples are dense (low scores) and drops the
    steep stretches a reader looks at (precision rising at high thresholds).
    """
    if len(x) <= points:
        return np.arange(len(x))
    length = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    picked = np.searchsorted(length, np.linspace(0.0, length[-1], points), side="left")
    return np.unique(np.concatenate([picked.clip(0, len(x) - 1), [0, len(x) - 1]]))


def _confusion_rates(frame: pd.DataFrame, threshold: float, name: str) -> list[dict[str, Any]]:
    """Share of each distant label predicted 0 or 1 at ``threshold``: prior-free rates."""
    predicted = decisions_at(frame, threshold)
    actual = frame["label"].to_numpy().astype(int)
    out = []
    for a in (1, 0):
        n = int((actual == a).sum())
        for p in (1, 0):
            k = int(((actual == a) & (predicted == p)).sum())
            out.append(
                {
                    "series": name,
                    "actual": a,
                    "predicted": p,
                    "examples": k,
                    "rate": k / n if n else 0.0,
                }
            )
    return out


def precision_recall_records(
    frames: Mapping[Split, pd.DataFrame], metrics: Metrics, *, prior: float
) -> list[dict[str, Any]]:
    """Each series' precision-recall curve, and its operating points under the two rules."""
    out: list[dict[str, Any]] = []
    for split, view in PR_SERIES:
        frame = frames[split]
        w = view_weights(frame, view=view, prior=prior)
        precision, recall, _ = precision_recall_curve(
            frame["label"], ranking_scores(frame, view=view), sample_weight=w
        )
        out += [
            {
                "series": SERIES[split, view],
                "kind": "curve",
                "recall": float(recall[i]),
                "precision": float(precision[i]),
            }
            for i in _thin_along(recall, precision)
        ]
        # the two rules' operating points on the curve, from this run's metrics
        for kind, view_metrics in (
            (PR_SHIPPED, metrics[split]["shipped"][view]),
            (PR_CHOSEN, metrics[split][view]),
        ):
            out.append(
                {
                    "series": SERIES[split, view],
                    "kind": kind,
                    "recall": view_metrics["recall"],
                    "precision": view_metrics["precision"],
                }
            )
    return out


def roc_records(frame: pd.DataFrame, split: str, *, prior: float) -> list[dict[str, Any]]:
    """One split's ROC curve; ROC is prior-free (rates within each class): the series is the set."""
    w = view_weights(frame, view="prior", prior=prior)
    fpr, tpr, _ = roc_curve(frame["label"], ranking_scores(frame), sample_weight=w)
    return [
        {"series": split, "fpr": float(fpr[i]), "tpr": float(tpr[i])} for i in _thin_along(fpr, tpr)
    ]


def calibration_records(
    frame: pd.DataFrame, split: str, *, prior: float, calibration_bins: int
) -> list[dict[str, Any]]:
    """One split's calibration at the prior: mean predicted against observed, per bin."""
    w = view_weights(frame, view="prior", prior=prior)
    table = priors.weighted_calibration(
        frame["label"].to_numpy(), frame["probability"].to_numpy(), w, n_bins=calibration_bins
    )
    return [
        {
            "series": SERIES[split, "prior"],
            "predicted": float(a),
            "observed": float(b),
            "weight": float(c),
        }
        for a, b, c in zip(table["predicted"], table["observed"], table["weight"], strict=True)
    ]


def cost_records(dev_b: pd.DataFrame, metrics: Metrics, *, prior: float) -> list[dict[str, Any]]:
    """dev_b's expected cost by threshold, and the chosen and the Bayes threshold on it."""
    threshold = metrics["threshold"]
    curve = priors.cost_curve(  # cut in log-odds (no rounding ties), drawn as probabilities
        dev_b["label"].to_numpy(),
        log_odds_at_prior(dev_b),
        view_weights(dev_b, view="prior", prior=prior),
        cost_fp=metrics["cost"]["false_positive"],
        cost_fn=metrics["cost"]["false_negative"],
    )
    finite = np.isfinite(curve.thresholds)
    thresholds = priors.sigmoid(curve.thresholds[finite][::-1])
    costs = curve.costs[finite][::-1]
    name = SERIES["dev_b", "prior"]
    out = [
        {
            "series": name,
            "kind": "curve",
            "threshold": float(thresholds[i]),
            "expected_cost": float(costs[i]),
        }
        for i in _thin_on_grid(thresholds, int(np.argmin(costs)))
    ]
    marks = (
        ("chosen", "chosen on dev_b", threshold, metrics["dev_b"]["prior"]["expected_cost"]),
        (
            "bayes",
            "Bayes, c_FP/(c_FP+c_FN)",
            metrics["bayes_threshold"],
            metrics["dev_b"]["prior_at_bayes_threshold"]["expected_cost"],
        ),
    )
    out += [
        {
            "series": label,
            "kind": kind,
            "threshold": float(t),
            "expected_cost": None if c is None else float(c),
        }
        for kind, label, t, c in marks
    ]
    return out


def plot_data(
    predictions: pd.DataFrame, metrics: Metrics, *, prior: float, calibration_bins: int
) -> dict[str, list[dict[str, Any]]]:
    """Data for ``dvc plots``: picture name -> records, each with a ``series`` label.

    Beside each curve (``kind`` ``curve``), points from this run's ``metrics``, so the
    pictures mark its own numbers: ``precision_recall`` holds each series' operating point
    under the shipped rule and under the chosen threshold; ``cost`` the chosen and the
    Bayes threshold (``kind`` ``chosen``, ``bayes``) at their expected cost on dev_b.
    """
    frames = {s: predictions[predictions["split"] == s] for s in SPLITS}
    return {
        "precision_recall": precision_recall_records(frames, metrics, prior=prior),
        "roc": [r for s in SPLITS for r in roc_records(frames[s], s, prior=prior)],
        "calibration": [
            r
            for s in SPLITS
            for r in calibration_records(
                frames[s], s, prior=prior, calibration_bins=calibration_bins
            )
        ],
        "confusion": [
            r for s in SPLITS for r in _confusion_rates(frames[s], metrics["threshold"], s)
        ],
        "cost": cost_records(frames["dev_b"], metrics, prior=prior),
        "prior_sensitivity": prior_sensitivity_records(metrics),
        "label_free": label_free_records(metrics),
    }


def prior_sensitivity_records(metrics: Metrics) -> list[dict[str, Any]]:
    """Test's precision and recall at the chosen threshold as the production prior moves."""
    rows = (metrics.get("prior_sensitivity") or {}).get("rows", [])
    return [
        {"series": name, "prior": float(row["prior"]), "value": float(value)}
        for row in rows
        for name in SENSITIVITY_SERIES
        if (value := row[name]) is not None
    ]


def label_free_records(metrics: Metrics) -> list[dict[str, Any]]:
    """Each batch's prior estimated without labels (EM, with its interval) beside the measured one."""
    out = []
    for batch, entry in (metrics.get("label_free") or {}).items():
        estimate = entry.get("estimated_prior") or {}
        measured = (entry.get("measured") or {}).get("prior")
        value = estimate.get("value")
        if value is None:
            continue
        low, high = estimate.get("ci") or (value, value)
        if entry.get("in_sample"):  # dev_b: its own rows fitted the recalibration
            batch = f"{batch} (in sample)"
        out.append(
            {"batch": batch, "series": "estimated without labels (EM, 95% interval)",
             "prior": float(value), "low": low, "high": high}
        )  # fmt: skip
        if measured is not None:
            value = float(measured)  # a point: its interval is itself
            out.append(
                {"batch": batch, "series": "measured with labels", "prior": value,
                 "low": value, "high": value}
            )  # fmt: skip
    return out
