"""The evaluation wired: from the predictions table to metrics.json, the plot records and report.md.

Nothing here reads or writes a file; the stage does (``stages/evaluate.py``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from dsprior import calibration as cal
from dsprior import noise_shift, priors, quantify, runtime
from dsprior.evaluation.config import EvaluateConfig
from dsprior.evaluation.inputs import build_predictions
from dsprior.evaluation.label_free import (
    interval_checks,
    label_free_metrics,
    true_shift_metrics,
)
from dsprior.evaluation.metrics import compute_metrics, prior_sensitivity
from dsprior.evaluation.plots import plot_data
from dsprior.evaluation.recalibration import (
    calibration_metrics,
    calibration_offset,
    fit_recalibration,
    raw_score_thresholds,
    recalibrate_predictions,
)
from dsprior.evaluation.record import Metrics
from dsprior.evaluation.report import render_report

logger = logging.getLogger(__name__)


def recalibrated_predictions(
    rows: pd.DataFrame,
    logits: np.ndarray,
    *,
    beta: float,
    shift: tuple[float, float] | None,
    prior: float,
    training_prior: float | None,
) -> tuple[pd.DataFrame, cal.Calibration, dict[str, Any]]:
    """The predictions table, recalibrated; the recalibration chosen and its record.

    The model's log-odds are moved to the prior (``beta``, then ``shift``: a shift in
    log-odds), then through the recalibration that dev_b's log loss chooses
    (``recalibration.fit_recalibration``), fitted and applied on log-odds.
    """
    predictions = build_predictions(rows, logits, beta=beta, shift=shift)
    calibration, record = fit_recalibration(
        predictions,
        prior=prior,
        training_prior=training_prior,
        offset=calibration_offset(beta=beta, shift=shift),
    )
    logger.info("recalibration: %s", calibration)
    return recalibrate_predictions(predictions, calibration), calibration, record


def refuse_label_shift_on_noisy_labels(metrics: dict[str, Any]) -> None:
    """Where dev_b's gold labels show noisy distant labels (``noise_shift.noisy_labels_reason``),
    null the label-shift intervals of every ``label_free`` batch, as ``score --summary``
    does on a batch; the true-shift estimates (``label_free_true_shift``) hold instead."""
    noise = metrics["dev_b"].get("label_noise")
    if noise is None:
        return
    reason = noise_shift.noisy_labels_reason(
        noise.get("missing_label_rate_ci"), noise.get("false_label_rate_ci")
    )
    if reason is not None:
        for summary in metrics["label_free"].values():
            quantify.refuse_label_shift_intervals(summary, reason)


def add_label_free(
    metrics: dict[str, Any],
    predictions: pd.DataFrame,
    *,
    calibration: cal.Calibration,
    training_prior: float | None,
    calibration_bins: int,
    costs: priors.Costs,
    bootstrap: priors.Bootstrap,
) -> Metrics:
    """metrics.json's calibration and label-free keys, added to ``metrics`` (returned)."""
    prior, threshold = metrics["prior"], metrics["threshold"]
    for split, entry in calibration_metrics(
        predictions, prior=prior, calibration_bins=calibration_bins
    ).items():
        metrics[split]["calibration_at_prior"] = entry
    if not calibration.is_identity:  # the raw-score equivalents go through the recalibration
        metrics.update(raw_score_thresholds(metrics, calibration))
    metrics["prior_sensitivity"] = {
        "split": "test",
        "rule": "probability >= threshold, unchanged",
        "rows": prior_sensitivity(predictions, prior=prior, threshold=threshold, costs=costs),
    }
    metrics["label_free"] = label_free_metrics(
        predictions,
        prior=prior,
        threshold=threshold,
        costs=costs,
        calibration=calibration,
        training_prior=training_prior,
        bootstrap=bootstrap,
    )
    refuse_label_shift_on_noisy_labels(metrics)
    true_shift = true_shift_metrics(
        predictions, threshold=threshold, costs=costs, bootstrap=bootstrap
    )
    if true_shift is not None:  # dev_b has gold labels
        metrics["label_free_true_shift"] = true_shift
    metrics["label_free_checks"] = interval_checks(
        metrics["label_free"], level=bootstrap.level, true_shift=true_shift
    )
    return runtime.finite_or_none(metrics)


def evaluate_predictions(
    predictions: pd.DataFrame,
    *,
    config: EvaluateConfig,
    prior: float,
    prior_source: str,
    beta: float,
    extra: dict[str, Any] | None = None,
    gold_prior: float | None = None,
    gold_prior_source: str | None = None,
    calibration: cal.Calibration | None = None,
    training_prior: float | None = None,
    prior_rows: pd.DataFrame | None = None,
) -> tuple[Metrics, dict[str, list[dict[str, Any]]], str]:
    """Everything after scoring: (metrics, plot data, report text); ``extra`` goes into metrics.

    ``calibration`` is the recalibration already applied to ``probability`` (the
    prior-corrected values kept in ``probability_prior_corrected``); the label-free
    estimators start from the prior-corrected values and refit it when resampling.
    ``prior_rows``: the rows the priors were estimated from (``compute_metrics``).
    """
    metrics = compute_metrics(
        predictions,
        prior=prior,
        costs=config.cost,
        bootstrap=config.bootstrap,
        beta=beta,
        gold_prior=gold_prior,
        gold_prior_source=gold_prior_source,
        threshold_labels=config.threshold_labels,
        prior_rows=prior_rows,
    )
    metrics["prior_source"] = prior_source
    metrics.update(runtime.finite_or_none(extra or {}))
    record = add_label_free(
        metrics,
        predictions,
        calibration=calibration or cal.IDENTITY,
        training_prior=training_prior,
        calibration_bins=config.calibration_bins,
        costs=config.cost,
        bootstrap=config.bootstrap,
    )
    plots = plot_data(predictions, record, prior=prior, calibration_bins=config.calibration_bins)
    return record, plots, render_report(record)
