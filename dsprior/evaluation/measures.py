"""The measures of one split: its weights in a view, a rule's metrics, threshold-free scores, intervals.

Every metric in metrics.json is one of these, on one split (or its gold-labelled part) in
one view: ``sample`` counts examples as they are, ``prior`` weights them to the production
prior. A new metric goes here.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    class_likelihood_ratios,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from dsprior import priors
from dsprior.calibration import log_loss_of_log_odds

View = Literal["sample", "prior"]
VIEWS: tuple[View, ...] = ("sample", "prior")
CI_METRICS = ("precision", "recall", "f1", "expected_cost")
SHIPPED_SCORE = 0.5  # the rule the classic team shipped: the thinned model's raw score at 0.5
LOGIT = (
    "logit"  # predictions column: the model's raw log-odds (float64), the score from the model on
)
LOGIT_AT_PRIOR = (
    "logit_at_prior"  # predictions column: the log-odds ``probability`` is the sigmoid of
)


def log_odds_at_prior(frame: pd.DataFrame) -> np.ndarray:
    """The log-odds that decisions compare: ``logit_at_prior``, or for a table written before
    it existed, ``logit(probability)`` (unclipped: a probability of 1 is ``+inf``)."""
    if LOGIT_AT_PRIOR in frame.columns:
        return frame[LOGIT_AT_PRIOR].to_numpy(np.float64)
    with np.errstate(divide="ignore"):
        return logit(frame["probability"].to_numpy(np.float64))


def view_log_odds(frame: pd.DataFrame, *, view: str) -> np.ndarray:
    """The log-odds a view scores: the model's raw ``logit`` as sampled (``logit(score)`` for a
    table without it), ``logit_at_prior`` at the prior."""
    if view == "prior":
        return log_odds_at_prior(frame)
    if view != "sample":
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if LOGIT in frame.columns:
        return frame[LOGIT].to_numpy(np.float64)
    with np.errstate(divide="ignore"):
        return logit(frame["score"].to_numpy(np.float64))


def ranking_scores(frame: pd.DataFrame, *, view: str = "prior") -> np.ndarray:
    """What ranks the examples for AP, ROC AUC and the curves: the model's log-odds (every map
    after it is monotone; an isotonic step would only add ties); for a table without them,
    the view's own log-odds."""
    if LOGIT in frame.columns:
        return frame[LOGIT].to_numpy(np.float64)
    return view_log_odds(frame, view=view)


def shipped_decisions(frame: pd.DataFrame) -> np.ndarray:
    """The shipped rule's yes/no per example: the raw score at 0.5, what the team saw on dev_a."""
    return priors.decide_log_odds(
        view_log_odds(frame, view="sample"), threshold=SHIPPED_SCORE
    ).astype(int)


def decisions_at(frame: pd.DataFrame, threshold: float) -> np.ndarray:
    """The yes/no per example of the rule ``probability >= threshold``, compared in log-odds."""
    return priors.decide_log_odds(log_odds_at_prior(frame), threshold=threshold).astype(int)


def _safe(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """A sklearn metric, NaN where it is undefined (one class only, no predicted positive)."""
    try:
        return float(fn(*args, **kwargs))
    except ValueError:
        return float("nan")


def view_weights(frame: pd.DataFrame, *, view: str, prior: float | None) -> np.ndarray:
    """Per-example weights of one view: ones as sampled, weights moved to ``prior`` at the prior."""
    if view == "sample":
        return np.ones(len(frame))
    if view == "prior":
        return priors.weights_at_prior(
            frame["label"].to_numpy(), frame["weight"].to_numpy(np.float64), prior=prior
        )
    raise ValueError(f"view must be one of {VIEWS}, got {view!r}")


def decision_metrics(
    labels: np.ndarray,
    predicted: np.ndarray,
    weights: np.ndarray,
    *,
    costs: priors.Costs,
) -> dict[str, Any]:
    """Metrics of one yes/no rule: sklearn's with ``sample_weight``, plus cost and alert counts."""
    cm = priors.confusion(labels, predicted, weights)
    kw = {"sample_weight": weights, "zero_division": np.nan}
    with warnings.catch_warnings():  # undefined LR+ (no false positives) is reported as null
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        lr_plus, _ = class_likelihood_ratios(
            labels, predicted, labels=[0, 1], sample_weight=weights, replace_undefined_by=np.nan
        )
    out = {
        "precision": _safe(precision_score, labels, predicted, **kw),
        "recall": _safe(recall_score, labels, predicted, **kw),
        "f1": _safe(f1_score, labels, predicted, **kw),
        "lr_plus": float(lr_plus),
        "expected_cost": priors.expected_cost(
            cm, cost_fp=costs.false_positive, cost_fn=costs.false_negative
        ),
        "confusion": cm.as_dict(),
        "confusion_per_1000": cm.scaled(priors.PER_EXAMPLES / cm.total).as_dict()
        if cm.total > 0
        else None,
    }
    out.update({f"{k}_per_1000": v for k, v in priors.production_terms(cm).items()})
    return out


def view_metrics(
    frame: pd.DataFrame,
    *,
    view: str,
    prior: float | None,
    threshold: float,
    costs: priors.Costs,
) -> dict[str, Any]:
    """All metrics of one split in one view at the probability threshold."""
    y = frame["label"].to_numpy().astype(int)
    w = view_weights(frame, view=view, prior=prior)
    # the score is calibrated at the training prior, the probability at the production prior
    p = frame["score" if view == "sample" else "probability"].to_numpy(np.float64)
    z, ranked = view_log_odds(frame, view=view), ranking_scores(frame, view=view)
    out = decision_metrics(y, decisions_at(frame, threshold), w, costs=costs)
    out.update(
        {
            "examples": int(len(frame)),
            "positives": int(y.sum()),
            "positive_fraction": float(np.dot(y, w) / w.sum()) if w.sum() > 0 else float("nan"),
            "average_precision": _safe(average_precision_score, y, ranked, sample_weight=w),
            "roc_auc": _safe(roc_auc_score, y, ranked, sample_weight=w),
            "log_loss": _safe(log_loss_of_log_odds, y, z, w),
            "brier": _safe(brier_score_loss, y, p, sample_weight=w, labels=[0, 1]),
            "probability_scored": "score" if view == "sample" else "probability",
        }
    )
    return out


def rule_metrics(
    frame: pd.DataFrame,
    *,
    prior: float | None,
    threshold: float,
    costs: priors.Costs,
) -> dict[str, Any]:
    """Both views at ``threshold`` and, beside them, the shipped rule (raw score >= 0.5, what
    the team saw on dev_a and shipped), against whatever labels ``frame``'s ``label`` holds."""
    out: dict[str, Any] = {
        view: view_metrics(frame, view=view, prior=prior, threshold=threshold, costs=costs)
        for view in VIEWS
    }
    y = frame["label"].to_numpy().astype(int)
    shipped = shipped_decisions(frame)
    w = view_weights(frame, view="prior", prior=prior)
    out["shipped"] = {
        "sample": decision_metrics(y, shipped, np.ones(len(y)), costs=costs),
        "prior": decision_metrics(y, shipped, w, costs=costs),
    }
    return out


def metrics_from_rates(
    prior: np.ndarray, tpr: np.ndarray, fpr: np.ndarray, *, costs: priors.Costs
) -> dict[str, np.ndarray]:
    """A rule's precision, recall, F1 and expected cost at ``prior`` from its true and false
    positive rates: at the prior, positives weigh ``prior`` and negatives the rest, so
    these three numbers are all a rule's metrics depend on."""
    prior, tpr, fpr = (np.asarray(v, dtype=np.float64) for v in (prior, tpr, fpr))
    cost_fp, cost_fn = priors.check_costs(costs.false_positive, costs.false_negative)
    tp, fp, fn = prior * tpr, (1.0 - prior) * fpr, prior * (1.0 - tpr)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "precision": tp / (tp + fp),
            "recall": tpr * np.ones_like(prior),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "expected_cost": priors.PER_EXAMPLES * (fp * cost_fp + fn * cost_fn),
        }


def interval_refusal(
    frame: pd.DataFrame, *, labels: str, bootstrap: priors.Bootstrap
) -> str | None:
    """Why ``frame`` (one split's rows) gets no interval, or None: fewer label-1 examples
    than ``bootstrap.min_positives``, where the coverage benchmark found 95% intervals of
    the rule's rates holding well short of 95% (docs/methods.md)."""
    positives = int((frame["label"].to_numpy() == 1).sum())
    if positives >= bootstrap.min_positives:
        return None
    return (
        f"{positives} positives ({labels} labels) in the split, fewer than "
        f"evaluate.bootstrap.min_positives = {bootstrap.min_positives}: at so few, an interval "
        f"of precision, recall, F1 or cost does not hold its {bootstrap.level:.0%}"
    )


def bootstrap_intervals(
    frame: pd.DataFrame,
    predicted: np.ndarray,
    *,
    prior: float | None,
    costs: priors.Costs,
    bootstrap: priors.Bootstrap,
    prior_draws: np.ndarray | None = None,
) -> dict[str, list[float]]:
    """Intervals of a rule's precision, recall, F1 and expected cost at the prior.

    The four are functions of the rule's true and false positive rates and the prior
    (``metrics_from_rates``); each rate gets ``bootstrap.resamples`` draws from Jeffreys' posterior on
    its effective count (``priors.rate_draws``: the group bootstrap's design effect), so
    that correlated groups widen it and few events (no false positive among 20 alerts)
    leave it honest instead of one value. The prior's own uncertainty comes in through
    ``prior_draws`` (its draws from the rows it was estimated from); without them the prior
    is taken as known. ``prior`` None: the frame's own weighted positive rate, with its
    draws.
    """
    y = frame["label"].to_numpy().astype(int)
    w = frame["weight"].to_numpy(np.float64)
    groups = frame["group"].to_numpy()
    d = np.asarray(predicted, dtype=np.float64)
    resamples, level = bootstrap.resamples, bootstrap.level
    rng = np.random.default_rng([int(bootstrap.seed), 23])
    positive = (y == 1).astype(np.float64)
    (tpr, fpr), (tpr_draws, fpr_draws) = priors.rates_draws(
        np.vstack([d, d]), np.vstack([w * positive, w * (1.0 - positive)]), groups,
        size=resamples, rng=rng,
    )  # fmt: skip
    if prior is None:
        prior, own = priors.rate_draws(y, w, groups, size=resamples, rng=rng)
        prior_draws = own if prior_draws is None else prior_draws
    if prior_draws is None:
        prior_draws = np.full(int(resamples), float(prior))
    point = metrics_from_rates(np.array([prior]), np.array([tpr]), np.array([fpr]), costs=costs)
    drawn = metrics_from_rates(prior_draws, tpr_draws, fpr_draws, costs=costs)
    return {
        f"{name}_ci": list(priors.draws_interval(float(point[name][0]), drawn[name], level=level))
        for name in CI_METRICS
    }
