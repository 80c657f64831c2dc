"""metrics.json's distant- and gold-label keys: the threshold chosen on dev_b, each split's rules
with their intervals, the classic worked example, and the prior sensitivity.

The threshold minimises expected cost on ``dev_b`` at the prior (searched over log-odds, so
examples a saturated sigmoid would tie stay apart) and is applied unchanged to every split; beside it stand the Bayes rule on probabilities and the shipped rule (raw
score >= 0.5). Intervals (``INTERVAL_METHOD``) go on ``dev_a`` (the projection) and ``test``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from dsprior import calibration as cal
from dsprior import priors, runtime
from dsprior.evaluation.config import THRESHOLD_LABELS
from dsprior.evaluation.gold import (
    Labels,
    gold_labels,
    label_noise,
    weighted_gold_prior,
)
from dsprior.evaluation.inputs import PREDICTION_COLUMNS, SPLITS, Split
from dsprior.evaluation.measures import (
    LOGIT,
    bootstrap_intervals,
    decision_metrics,
    decisions_at,
    interval_refusal,
    log_odds_at_prior,
    rule_metrics,
    shipped_decisions,
    view_weights,
)

CLASSIC = {"tp": 97, "fn": 3, "fp": 3, "tn": 197, "negative_factor": 50}
PRIOR_FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0)  # prior sensitivity: half to twice the estimate
INTERVAL_SPLITS: tuple[Split, ...] = ("dev_a", "test")  # the projection, and the one reported
INTERVAL_METHOD = (
    "Jeffreys on the effective counts of the rule's true and false positive rates (the group "
    "bootstrap's design effect), with the prior's own uncertainty where it was estimated"
)


def log_odds_threshold(frame: pd.DataFrame, *, prior: float | None, costs: priors.Costs) -> float:
    """The cost-minimising threshold on ``frame`` at ``prior``, searched over its log-odds at
    the prior (no two examples tie by rounding), as the probability whose rule
    (``decide_log_odds``) reproduces the chosen cut there."""
    z = log_odds_at_prior(frame)
    cut, _ = priors.cost_minimising_threshold(
        frame["label"].to_numpy(),
        z,
        view_weights(frame, view="prior", prior=prior),
        cost_fp=costs.false_positive,
        cost_fn=costs.false_negative,
    )
    return priors.threshold_probability(cut, z)


def dev_b_thresholds(
    dev_b: pd.DataFrame, *, labels: tuple[Labels, ...], costs: priors.Costs
) -> dict[str, float | None]:
    """dev_b's cost-minimising threshold against each ``labels``; None where they are too few."""
    out: dict[str, float | None] = {}
    for view in labels:
        rows = view.rows(dev_b)
        out[view.name] = (
            None
            if view.threshold_refusal(rows) is not None
            else log_odds_threshold(rows, prior=view.prior, costs=costs)
        )
    return out


def tied_scores(predictions: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per split: how many examples share their ``logit`` with another example of the split.

    A saturated sigmoid ties every confident example (a float32 score of exactly 1); log-odds
    tie only where two examples genuinely score alike. ``tied_share`` of all examples and of
    the positives; ``distinct`` values among the ``examples``.
    """
    column = LOGIT if LOGIT in predictions.columns else "score"
    out: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        frame = predictions[predictions["split"] == split]
        values = frame[column].to_numpy(np.float64)
        _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        tied = counts[inverse] > 1
        positive = frame["label"].to_numpy().astype(bool)
        out[split] = {
            "column": column,
            "examples": int(len(values)),
            "distinct": int(len(counts)),
            "tied_share": float(tied.mean()) if len(values) else float("nan"),
            "positives": int(positive.sum()),
            "positives_tied_share": float(tied[positive].mean())
            if positive.any()
            else float("nan"),
        }
    return out


def check_predictions(predictions: pd.DataFrame, *, threshold_labels: str) -> None:
    """Refuse a predictions table without its columns, or an unknown ``threshold_labels``."""
    missing = sorted(set(PREDICTION_COLUMNS) - set(predictions.columns))
    if missing:
        raise ValueError(f"predictions lack columns {missing}")
    if threshold_labels not in THRESHOLD_LABELS:
        raise ValueError(
            f"threshold_labels must be one of {THRESHOLD_LABELS}, got {threshold_labels!r}"
        )


def resolve_gold_prior(
    predictions: pd.DataFrame, gold_prior: float | None, gold_prior_source: str | None
) -> tuple[bool, float | None, str | None]:
    """Whether any row has a gold label, and the gold prior (estimated from them when None)."""
    has_gold = bool((~np.isnan(gold_labels(predictions))).any())
    if has_gold and gold_prior is None:
        gold_prior = weighted_gold_prior(
            gold_labels(predictions), predictions["weight"].to_numpy(np.float64)
        )
        gold_prior_source = gold_prior_source or "gold-labelled evaluated rows, weighted"
    return has_gold, gold_prior, gold_prior_source


def chosen_threshold(
    thresholds: dict[str, float | None], dev_b: pd.DataFrame, *, threshold_labels: str
) -> float:
    """The threshold chosen against ``threshold_labels``; refused where gold is too scarce."""
    if threshold_labels == "gold" and thresholds["gold"] is None:
        gold = Labels("gold", None)
        reason = gold.threshold_refusal(gold.rows(dev_b))
        raise ValueError(
            f"evaluate.threshold_labels is gold but {reason}; label more of dev_b, or set "
            "evaluate.threshold_labels: distant"
        )
    chosen = thresholds[threshold_labels]
    assert chosen is not None  # the distant threshold always exists; a missing gold one refused
    return float(chosen)


def threshold_record(
    thresholds: dict[str, float | None],
    *,
    threshold: float,
    threshold_labels: str,
    has_gold: bool,
    prior: float,
    beta: float,
    costs: priors.Costs,
) -> dict[str, Any]:
    """metrics.json's head: the prior, beta, costs, and the chosen and Bayes thresholds."""
    bayes = priors.bayes_threshold(cost_fp=costs.false_positive, cost_fn=costs.false_negative)
    return {
        "prior": prior,
        "beta": beta,
        "cost": {
            "false_positive": costs.false_positive,
            "false_negative": costs.false_negative,
            "unit": f"per {priors.PER_EXAMPLES} production examples",
        },
        "threshold": threshold,
        # the value decisions compare: logit_at_prior >= threshold_logit
        "threshold_logit": priors.threshold_log_odds(threshold),
        "threshold_score": raw_score_threshold(threshold, beta=beta),
        "threshold_source": "minimum expected cost on dev_b at the prior"
        + (" against gold labels, at the gold-label prior" if threshold_labels == "gold" else ""),
        "threshold_labels": threshold_labels,
        "threshold_by_labels": thresholds if has_gold else {"distant": thresholds["distant"]},
        "bayes_threshold": bayes,
        "bayes_threshold_score": raw_score_threshold(bayes, beta=beta),
    }


def raw_score_threshold(
    threshold: float, *, beta: float, calibration: cal.Calibration = cal.IDENTITY
) -> float:
    """The raw score (sigmoid of the model's logit) that reaches ``threshold`` after the prior
    correction and ``calibration``, taken back in log-odds; a threshold of 1 or more stays."""
    z = priors.threshold_log_odds(threshold)
    if not np.isfinite(z):
        return float(threshold)
    uncalibrated = float(calibration.invert_log_odds(z))
    return float(priors.sigmoid(uncalibrated - np.log(priors.check_beta(beta))))


def labels_entry(split_entry: dict[str, Any], labels: Labels) -> dict[str, Any] | None:
    """Where a split's metrics against ``labels`` sit in its entry: distant ones at its top,
    gold ones under ``gold`` (None where the split has no gold label)."""
    return split_entry if labels.name == "distant" else split_entry.get(labels.name)


def split_metrics(
    frame: pd.DataFrame,
    *,
    labels: tuple[Labels, ...],
    threshold: float,
    bayes: float,
    costs: priors.Costs,
    bootstrap: priors.Bootstrap,
) -> dict[str, Any]:
    """One split's entry: against each ``labels``, both views at the threshold and the shipped
    rule; the Bayes rule against distant labels, and the label noise where gold exists."""
    out: dict[str, Any] = {}
    for view in labels:
        rows = view.rows(frame)
        if view.name == "distant":
            out.update(rule_metrics(rows, prior=view.prior, threshold=threshold, costs=costs))
            # beside the chosen rule: the Bayes rule on probabilities
            y = rows["label"].to_numpy().astype(int)
            w = view_weights(rows, view="prior", prior=view.prior)
            out["prior_at_bayes_threshold"] = decision_metrics(
                y, decisions_at(rows, bayes), w, costs=costs
            )
        elif not rows.empty:  # a split without gold labels has no gold keys at all
            out[view.name] = {
                "gold_examples": int(len(rows)),
                "split_examples": int(len(frame)),
                "labelled_fraction": len(rows) / len(frame),
                **rule_metrics(rows, prior=view.prior, threshold=threshold, costs=costs),
            }
            out["label_noise"] = label_noise(rows, bootstrap=bootstrap)
    return out


def add_intervals(
    entry: dict[str, Any],
    frame: pd.DataFrame,
    *,
    labels: tuple[Labels, ...],
    threshold: float,
    prior_draws: dict[str, np.ndarray | None],
    costs: priors.Costs,
    bootstrap: priors.Bootstrap,
) -> None:
    """Add the chosen and the shipped rule's intervals to ``entry``, a split's entry being built,
    against each ``labels`` the entry holds, at their prior and with its ``prior_draws`` (by
    labels name; None: the prior taken as known). A split with too few positives of its own
    (``interval_refusal``), or at a prior estimated from too few (``Labels.prior_refusal``),
    gets the reason in place of its intervals.
    """
    for view in labels:
        target = labels_entry(entry, view)
        if target is None:
            continue
        rows, draws = view.rows(frame), prior_draws.get(view.name)
        refused = interval_refusal(
            rows, labels=view.name, bootstrap=bootstrap
        ) or view.prior_refusal(bootstrap=bootstrap)
        for rule, decided in (
            (target["prior"], decisions_at(rows, threshold)),
            (target["shipped"]["prior"], shipped_decisions(rows)),
        ):
            if refused is not None:
                rule["interval_refused"] = refused
                continue
            rule.update(
                bootstrap_intervals(
                    rows,
                    decided,
                    prior=view.prior,
                    costs=costs,
                    bootstrap=bootstrap,
                    prior_draws=draws,
                )
            )


def compute_metrics(
    predictions: pd.DataFrame,
    *,
    prior: float,
    costs: priors.Costs,
    bootstrap: priors.Bootstrap,
    beta: float = 1.0,
    gold_prior: float | None = None,
    gold_prior_source: str | None = None,
    threshold_labels: str = "distant",
    prior_rows: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """metrics.json as a dict: per split and view, the thresholds, and intervals.

    ``beta`` only converts thresholds to the raw-score scale for the report. Where
    ``predictions`` has gold labels (``true_label``), ``gold_prior`` is the gold-label
    production prior (estimated from the gold-labelled rows, weighted, when None).
    ``threshold_labels`` says which labels dev_b's threshold is chosen on. ``prior_rows``:
    the rows (``label``, ``weight``, ``group``, ``true_label``) the priors were estimated
    from; the sampling uncertainty of each prior that is their rate goes into every interval
    at it (``bootstrap.prior_uncertainty`` says which); a prior given, not estimated from
    them, is taken as known.
    """
    check_predictions(predictions, threshold_labels=threshold_labels)
    by_split = {s: predictions[predictions["split"] == s] for s in SPLITS}
    has_gold, gold_prior, gold_prior_source = resolve_gold_prior(
        predictions, gold_prior, gold_prior_source
    )
    dev_b = by_split["dev_b"]
    labels = tuple(
        view.estimated_from(prior_rows)
        for view in (Labels("distant", prior), Labels("gold", gold_prior))
    )
    thresholds = dev_b_thresholds(dev_b, labels=labels, costs=costs)
    threshold = chosen_threshold(thresholds, dev_b, threshold_labels=threshold_labels)
    metrics = threshold_record(
        thresholds,
        threshold=threshold,
        threshold_labels=threshold_labels,
        has_gold=has_gold,
        prior=prior,
        beta=beta,
        costs=costs,
    )
    for split, frame in by_split.items():
        metrics[split] = split_metrics(
            frame,
            labels=labels,
            threshold=threshold,
            bayes=metrics["bayes_threshold"],
            costs=costs,
            bootstrap=bootstrap,
        )
    draws = {view.name: view.prior_draws(bootstrap=bootstrap) for view in labels}
    for split in INTERVAL_SPLITS:
        add_intervals(
            metrics[split],
            by_split[split],
            labels=labels,
            threshold=threshold,
            prior_draws=draws,
            costs=costs,
            bootstrap=bootstrap,
        )
    if has_gold:
        metrics["gold_prior"] = gold_prior
        metrics["gold_prior_source"] = gold_prior_source
    metrics["tied_scores"] = tied_scores(predictions)
    metrics["bootstrap"] = {
        **dataclasses.asdict(bootstrap),
        "unit": "group",
        "method": INTERVAL_METHOD,
        "prior_uncertainty": {view.name: view.prior_rows is not None for view in labels},
    }
    metrics["classic_example"] = classic_example()
    return runtime.finite_or_none(metrics)


def classic_example() -> dict[str, float]:
    """TP 97, FN 3, FP 3, TN 197 at 1:2, and the same rule with negatives x50 (1:100)."""
    c = CLASSIC
    sampled = priors.Confusion(tn=c["tn"], fp=c["fp"], fn=c["fn"], tp=c["tp"])
    projected = priors.Confusion(
        tn=c["tn"] * c["negative_factor"], fp=c["fp"] * c["negative_factor"], fn=c["fn"], tp=c["tp"]
    )
    pi_s = (c["tp"] + c["fn"]) / sampled.total
    pi = (c["tp"] + c["fn"]) / projected.total
    return {
        "precision_sampled": priors.rates(sampled)["precision"],
        "precision_projected": priors.rates(projected)["precision"],
        "precision_siblini": priors.calibrated_precision(
            c["tp"], c["fp"], sample_prior=pi_s, prior=pi
        ),
        "recall": priors.rates(sampled)["recall"],
    }


def prior_sensitivity(
    predictions: pd.DataFrame,
    *,
    prior: float,
    threshold: float,
    costs: priors.Costs,
    split: str = "test",
) -> list[dict[str, float]]:
    """``split``'s precision, recall, alerts and cost at the threshold across plausible priors.

    The rule stays as the bundle ships it (probability at the estimated prior >=
    threshold); only the class balance the split is weighted to moves, because the
    prior is often a guess.
    """
    frame = predictions[predictions["split"] == split]
    y = frame["label"].to_numpy().astype(int)
    decision = decisions_at(frame, threshold)
    out = []
    for factor in PRIOR_FACTORS:
        at = float(min(prior * factor, 0.5))
        w = view_weights(frame, view="prior", prior=at)
        m = decision_metrics(y, decision, w, costs=costs)
        out.append(
            {
                "factor": factor,
                "prior": at,
                "precision": m["precision"],
                "recall": m["recall"],
                "alerts_per_1000": m["alerts_per_1000"],
                "expected_cost": m["expected_cost"],
            }
        )
    return out
