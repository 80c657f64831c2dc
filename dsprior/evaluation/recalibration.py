"""The recalibration chosen on dev_b's log loss at the prior, and the calibration at the prior.

After the prior correction, ``probability`` may still be miscalibrated; the candidates
(``dsprior.calibration``) are fitted on dev_a or dev_b, on log-odds (``logit_at_prior``,
never a clipped saturated probability), and the one with the lowest dev_b log loss at the
prior is applied to the log-odds. The prior-corrected values are kept beside it, in
``probability_prior_corrected``, for the label-free estimators, which refit it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dsprior import calibration as cal
from dsprior import priors, quantify
from dsprior.evaluation.inputs import SPLITS
from dsprior.evaluation.measures import LOGIT_AT_PRIOR, log_odds_at_prior, view_weights
from dsprior.evaluation.metrics import raw_score_threshold


def calibration_offset(*, beta: float, shift: tuple[float, float] | None) -> float:
    """``logit(p at the prior) - logit(raw score)``: what the prior correction adds."""
    return priors.prior_offset(beta=beta, shift=shift)


def fit_recalibration(
    predictions: pd.DataFrame,
    *,
    prior: float,
    training_prior: float | None,
    offset: float,
) -> tuple[cal.Calibration, dict[str, Any]]:
    """Choose the recalibration by dev_b's log loss at the prior (``dsprior.calibration``).

    Candidates: none, temperature and Platt on dev_a at the training prior (before
    the prior correction), Platt and isotonic on dev_b at the production prior
    (scored by group cross-fitting). Returns the chosen map and the record for metrics.json.
    """
    frames = {s: predictions[predictions["split"] == s] for s in ("dev_a", "dev_b")}
    dev_b = frames["dev_b"]
    dev_b_args = (
        log_odds_at_prior(dev_b),
        dev_b["label"].to_numpy(),
        view_weights(dev_b, view="prior", prior=prior),
        dev_b["group"].to_numpy(),
    )
    dev_a = frames["dev_a"]
    dev_a_args = None
    if len(dev_a) and dev_a["label"].nunique() == 2:
        weights = dev_a["weight"].to_numpy(np.float64)
        dev_a_args = (
            log_odds_at_prior(dev_a),
            dev_a["label"].to_numpy(),
            priors.weights_at_prior(dev_a["label"].to_numpy(), weights, prior=training_prior)
            if training_prior is not None
            else np.ones(len(dev_a)),
        )
    chosen, candidates = cal.choose_calibration(
        dev_a=dev_a_args, dev_b=dev_b_args, dev_a_offset=offset
    )
    record = {
        "chosen": chosen.as_dict(),
        "chosen_by": "lowest dev_b log loss at the prior (dev_b fits: group cross-fitted)",
        "candidates": candidates,
        "training_prior": training_prior,
        "applies_to": "sigmoid(slope * z + intercept), z = log-odds after the prior correction "
        "(the model's logit + log(beta) + any prior shift); fitted on log-odds",
    }
    return chosen, record


def recalibrate_predictions(
    predictions: pd.DataFrame, calibration: cal.Calibration
) -> pd.DataFrame:
    """``logit_at_prior`` and ``probability`` recalibrated (in log-odds); the prior-corrected
    log-odds and probability kept as ``logit_prior_corrected`` and
    ``probability_prior_corrected``."""
    out = predictions.copy()
    corrected = log_odds_at_prior(out)
    out.insert(
        out.columns.get_loc("probability"),
        quantify.PRIOR_CORRECTED,
        out["probability"].to_numpy(np.float64),
    )
    out.insert(
        out.columns.get_loc(quantify.PRIOR_CORRECTED), quantify.PRIOR_CORRECTED_LOG_ODDS, corrected
    )
    out[LOGIT_AT_PRIOR] = calibration.map_log_odds(corrected)
    out["probability"] = calibration.probability(corrected)
    return out


def calibration_metrics(
    predictions: pd.DataFrame, *, prior: float, calibration_bins: int
) -> dict[str, dict[str, Any]]:
    """Per split at the prior: calibration-in-the-large and weighted calibration error."""
    out: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        frame = predictions[predictions["split"] == split]
        y, w = frame["label"].to_numpy(), view_weights(frame, view="prior", prior=prior)
        entry: dict[str, Any] = cal.calibration_quality(
            y, frame["probability"].to_numpy(np.float64), w, n_bins=calibration_bins
        )
        if quantify.PRIOR_CORRECTED in frame.columns:
            entry["before_recalibration"] = cal.calibration_quality(
                y, frame[quantify.PRIOR_CORRECTED].to_numpy(np.float64), w, n_bins=calibration_bins
            )
        out[split] = entry
    return out


def raw_score_thresholds(
    metrics: Mapping[str, Any], calibration: cal.Calibration
) -> dict[str, float]:
    """``threshold_score`` and ``bayes_threshold_score``: each threshold taken back through
    the recalibration, then through the prior correction, to the model's raw score."""
    return {
        f"{key}_score": raw_score_threshold(
            metrics[key], beta=metrics["beta"], calibration=calibration
        )
        for key in ("threshold", "bayes_threshold")
    }
