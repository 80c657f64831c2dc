"""Evaluate stage: metrics at the production prior, a threshold from dev_b, test with error bars.

Scores ``dev_a``, ``dev_b`` and ``test`` once, then everything is a pure function
of the predictions table (``example_id, split, group, label, weight, score,
probability``):

- ``sample`` metrics count examples as they are in the split;
- ``prior`` metrics weight them (manifest weights, negatives rescaled so the
  weighted positive fraction equals the production prior). For the thinned
  ``dev_a`` this is a projection; ``dev_b`` and ``test`` are production-ratio
  data, so it is a measurement;
- ``probability`` is the score mapped to the production prior with the
  ``beta`` recorded by train (Dal Pozzolo / Elkan);
- the threshold minimises expected cost on ``dev_b`` at the prior and is applied
  unchanged to every split; the Bayes threshold ``c_FP / (c_FP + c_FN)`` is
  reported beside it;
- group-level bootstrap intervals on ``dev_a`` (the projection) and ``test``;
- where examples carry a gold label (``true_label``, null where nobody labelled
  the example), the same metrics against gold on the gold-labelled examples
  only (``{split}.gold``), at the gold-label production prior, and the label
  noise of the distant labels (``{split}.label_noise``). The threshold may be
  chosen against gold instead (``evaluate.threshold_labels: gold``).

Usage::

    python -m stages.evaluate --params params.yaml --dataset data/dataset \
        --manifest data/manifest.parquet --model-dir models --reports reports
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    class_likelihood_ratios,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from dsprior import calibration as cal
from dsprior import common, hardware, priors, quantify

logger = logging.getLogger(__name__)

SPLITS = ("dev_a", "dev_b", "test")
VIEWS = ("sample", "prior")
PREDICTION_COLUMNS = ("example_id", "split", "group", "label", "weight", "score", "probability")
GOLD = "true_label"  # optional predictions/manifest column: the gold label, null where unlabelled
THRESHOLD_LABELS = ("distant", "gold")
# threshold_labels: gold needs at least this much gold on dev_b: fewer gold positives than this
# make the cost minimum one or two examples' decision
GOLD_THRESHOLD_MIN = {"examples": 100, "positives": 10, "negatives": 10}
MANIFEST_COLUMNS = ("example_id", "group", "label", "split", "upstream_rate", "kept", "weight")
CI_METRICS = ("precision", "recall", "f1", "expected_cost")
SHIPPED_SCORE = 0.5  # the rule the classic team shipped: the thinned model's raw score at 0.5
CURVE_POINTS = 200  # plot files are kept in git: curves are thinned to about this many points
CLASSIC = {"tp": 97, "fn": 3, "fp": 3, "tn": 197, "negative_factor": 50}


# ----------------------------------------------------------------------------- params


_UNIT = {"minimum": 0, "maximum": 1, "min_open": True, "max_open": True}
PARAMS_SCHEMA: dict[str, common.Spec] = {
    "prior": common.Number(**_UNIT, none=True),
    "cost": common.Section(
        {"false_positive": common.Number(minimum=0), "false_negative": common.Number(minimum=0)}
    ),
    "bootstrap": common.Section(
        {
            "resamples": common.Integer(minimum=1),
            "level": common.Number(**_UNIT),
            "seed": common.Integer(minimum=0),
        }
    ),
    "calibration_bins": common.Integer(minimum=1),
    "batch_size": common.Integer(minimum=1),
    "precision": common.Choice(*hardware.PRECISIONS),  # scoring precision (stages.hardware)
    "onednn": common.Choice(*hardware.ONEDNN_SETTINGS),
    "threshold_labels": common.Choice(*THRESHOLD_LABELS),  # choose dev_b's threshold on these
}


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """Validate the whole ``evaluate`` section (every key required); the options it sets."""
    common.check_section(params, PARAMS_SCHEMA, "evaluate")
    cost, boot = params["cost"], params["bootstrap"]
    out = {
        "prior": params["prior"],
        "cost_fp": float(cost["false_positive"]),
        "cost_fn": float(cost["false_negative"]),
        "resamples": int(boot["resamples"]),
        "level": float(boot["level"]),
        "seed": int(boot["seed"]),
        "batch_size": int(params["batch_size"]),
        "calibration_bins": int(params["calibration_bins"]),
        "precision": params["precision"],
        "onednn": params["onednn"],
        "threshold_labels": params["threshold_labels"],
    }
    priors.bayes_threshold(cost_fp=out["cost_fp"], cost_fn=out["cost_fn"])  # not both zero
    return out


# ----------------------------------------------------------------------------- inputs


def evaluation_rows(manifest: pd.DataFrame) -> pd.DataFrame:
    """Kept rows of the evaluated splits, in manifest (dataset) order."""
    missing = sorted(set(MANIFEST_COLUMNS) - set(manifest.columns))
    if missing:
        raise ValueError(f"manifest lacks columns {missing}; it needs {list(MANIFEST_COLUMNS)}")
    rows = manifest[manifest["kept"].astype(bool) & manifest["split"].isin(SPLITS)]
    absent = [s for s in SPLITS if not (rows["split"] == s).any()]
    if absent:
        raise ValueError(f"manifest has no kept rows in splits {absent}; evaluate needs {SPLITS}")
    return rows.reset_index(drop=True)


def estimate_production_prior(manifest: pd.DataFrame) -> tuple[float, str]:
    """The production prior from production-ratio rows (upstream rate 1), weighted.

    Falls back to every kept row when no source is at the production ratio.
    Returns the prior and a phrase saying where it came from.
    """
    kept = manifest[manifest["kept"].astype(bool)]
    production = kept[np.isclose(kept["upstream_rate"].to_numpy(np.float64), 1.0)]
    if len(production) and production["label"].nunique() == 2:
        source = f"production-ratio rows (upstream_rate 1), n={len(production)}"
        rows = production
    else:
        logger.warning("no production-ratio rows with both labels; estimating from all kept rows")
        source = f"all kept rows, weighted, n={len(kept)}"
        rows = kept
    prior = priors.estimate_prior(rows["label"].to_numpy(), rows["weight"].to_numpy(np.float64))
    return prior, source


def gold_labels(frame: pd.DataFrame) -> np.ndarray:
    """The ``true_label`` column as floats: 0, 1, or NaN where unlabelled (all NaN if absent)."""
    if GOLD not in frame.columns:
        return np.full(len(frame), np.nan)
    values = frame[GOLD].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~(np.isnan(values) | np.isin(values, (0.0, 1.0)))
    if bad.any():
        raise ValueError(f"{GOLD} must be 0, 1 or null, got {np.unique(values[bad])[:5].tolist()}")
    return values


def weighted_gold_prior(gold: np.ndarray, weights: np.ndarray) -> float | None:
    """Weighted gold positive fraction of the labelled rows; None unless both classes occur."""
    labelled = ~np.isnan(gold)
    if not labelled.any() or len(np.unique(gold[labelled])) < 2:
        return None
    return priors.estimate_prior(gold[labelled].astype(np.int8), weights[labelled])


def estimate_gold_prior(manifest: pd.DataFrame) -> tuple[float | None, str]:
    """The gold-label production prior, estimated as :func:`estimate_production_prior` does.

    From the gold-labelled production-ratio rows, weighted with the manifest weights
    (which undo every thinning, so they restore the population for any label); falls
    back to every gold-labelled kept row. ``None`` when the gold labels lack a class.
    """
    kept = manifest[manifest["kept"].astype(bool)]
    gold = gold_labels(kept)
    labelled = ~np.isnan(gold)
    if not labelled.any():
        return None, "no gold labels"
    weights = kept["weight"].to_numpy(np.float64)
    production = labelled & np.isclose(kept["upstream_rate"].to_numpy(np.float64), 1.0)
    prior = weighted_gold_prior(np.where(production, gold, np.nan), weights)
    if prior is not None:
        return prior, f"gold-labelled production-ratio rows (upstream_rate 1), n={production.sum()}"
    prior = weighted_gold_prior(gold, weights)
    if prior is None:
        return None, f"the {labelled.sum()} gold labels hold one class only"
    logger.warning("no gold-labelled production-ratio rows with both labels; using all kept rows")
    return prior, f"all gold-labelled kept rows, weighted, n={labelled.sum()}"


def build_predictions(
    rows: pd.DataFrame,
    scores: np.ndarray,
    *,
    beta: float,
    shift: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """The predictions table: ``score`` as the model gave it, ``probability`` at the prior.

    ``shift=(from_prior, to_prior)`` further moves the corrected probabilities
    when ``evaluate.prior`` differs from the prior the weights restore.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(rows),):
        raise ValueError(f"scores must have shape ({len(rows)},), got {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{int((~np.isfinite(scores)).sum())} scores are not finite")
    probability = priors.probability_at_prior(scores, beta=beta, shift=shift)
    out = pd.DataFrame(
        {
            "example_id": rows["example_id"].astype(str).to_numpy(),
            "split": rows["split"].astype(str).to_numpy(),
            "group": rows["group"].astype(str).to_numpy(),
            "label": rows["label"].to_numpy().astype(np.int8),
            "weight": rows["weight"].to_numpy(np.float64),
            "score": scores,
            "probability": probability,
        }
    )
    if GOLD in rows.columns:  # the gold label travels with the prediction, null where unlabelled
        out[GOLD] = pd.array(
            [None if np.isnan(g) else int(g) for g in gold_labels(rows)], dtype="Int8"
        )
    return out


# ----------------------------------------------------------------------------- metrics


def _safe(fn, *args, **kwargs) -> float:
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
    cost_fp: float,
    cost_fn: float,
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
        "expected_cost": priors.expected_cost(cm, cost_fp=cost_fp, cost_fn=cost_fn),
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
    prior: float,
    threshold: float,
    cost_fp: float,
    cost_fn: float,
) -> dict[str, Any]:
    """All metrics of one split in one view at the probability threshold."""
    y = frame["label"].to_numpy().astype(int)
    w = view_weights(frame, view=view, prior=prior)
    # the score is calibrated at the training prior, the probability at the production prior
    p = frame["score" if view == "sample" else "probability"].to_numpy(np.float64)
    predicted = (frame["probability"].to_numpy(np.float64) >= threshold).astype(int)
    out = decision_metrics(y, predicted, w, cost_fp=cost_fp, cost_fn=cost_fn)
    out.update(
        {
            "examples": int(len(frame)),
            "positives": int(y.sum()),
            "positive_fraction": float(np.dot(y, w) / w.sum()) if w.sum() > 0 else float("nan"),
            "average_precision": _safe(average_precision_score, y, p, sample_weight=w),
            "roc_auc": _safe(roc_auc_score, y, p, sample_weight=w),
            "log_loss": _safe(log_loss, y, p, sample_weight=w, labels=[0, 1]),
            "brier": _safe(brier_score_loss, y, p, sample_weight=w, labels=[0, 1]),
            "probability_scored": "score" if view == "sample" else "probability",
        }
    )
    return out


def bootstrap_intervals(
    frame: pd.DataFrame,
    predicted: np.ndarray,
    *,
    prior: float | None,
    cost_fp: float,
    cost_fn: float,
    resamples: int,
    level: float,
    seed: int,
) -> dict[str, list[float]]:
    """Group-bootstrap intervals of a rule's precision, recall, F1 and expected cost at the prior."""
    y = frame["label"].to_numpy().astype(int)
    w = frame["weight"].to_numpy(np.float64)

    def statistic(multiplicity: np.ndarray) -> dict[str, np.ndarray]:
        weights = priors.weights_at_prior_rows(y, w * multiplicity, prior=prior)
        cm = priors.confusion_rows(y, predicted, weights)
        out = {k: v for k, v in priors.rates(cm).items() if k in CI_METRICS}
        out["expected_cost"] = priors.expected_cost(cm, cost_fp=cost_fp, cost_fn=cost_fn)
        return out

    result = priors.group_bootstrap(
        frame["group"].to_numpy(), statistic, resamples=resamples, level=level, seed=seed
    )
    return {f"{name}_ci": list(result.intervals[name]) for name in CI_METRICS}


# ----------------------------------------------------------------------------- gold labels


def gold_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The gold-labelled rows of ``frame``, ``label`` set to the gold label.

    The distant label moves to ``distant_label``; every metric function then measures
    against gold unchanged. Unlabelled rows are dropped, never counted as negatives.
    """
    gold = gold_labels(frame)
    labelled = ~np.isnan(gold)
    out = frame[labelled].copy()
    out["distant_label"] = out["label"].to_numpy().astype(np.int8)
    out["label"] = gold[labelled].astype(np.int8)
    return out


def gold_threshold_refusal(gold_dev_b: pd.DataFrame) -> str | None:
    """Why dev_b's gold labels are too few to choose a threshold on, or None if enough."""
    n = len(gold_dev_b)
    positives = int(gold_dev_b["label"].sum())
    have = {"examples": n, "positives": positives, "negatives": n - positives}
    short = [k for k, need in GOLD_THRESHOLD_MIN.items() if have[k] < need]
    if not short:
        return None
    need = ", ".join(f"{v} {k}" for k, v in GOLD_THRESHOLD_MIN.items())
    return (
        f"dev_b has {n} gold-labelled examples ({positives} gold positives, "
        f"{n - positives} gold negatives); a threshold chosen on gold needs at least {need}"
    )


def dev_b_thresholds(
    dev_b: pd.DataFrame, *, prior: float, gold_prior: float | None, cost_fp: float, cost_fn: float
) -> dict[str, float | None]:
    """dev_b's cost-minimising threshold against distant labels, and against gold if enough."""
    out: dict[str, float | None] = {}
    out["distant"], _ = priors.cost_minimising_threshold(
        dev_b["label"].to_numpy(),
        dev_b["probability"].to_numpy(np.float64),
        view_weights(dev_b, view="prior", prior=prior),
        cost_fp=cost_fp,
        cost_fn=cost_fn,
    )
    gold = gold_frame(dev_b)
    out["gold"] = None
    if gold_threshold_refusal(gold) is None:
        out["gold"], _ = priors.cost_minimising_threshold(
            gold["label"].to_numpy(),
            gold["probability"].to_numpy(np.float64),
            view_weights(gold, view="prior", prior=gold_prior),
            cost_fp=cost_fp,
            cost_fn=cost_fn,
        )
    return out


def label_noise(gold: pd.DataFrame, *, resamples: int, level: float, seed: int) -> dict[str, Any]:
    """How the distant labels err where both labels exist, with group-bootstrap intervals.

    The distant label is scored as a prediction of the gold one, with the manifest
    weights (which undo every thinning, so the rates are the population's):
    ``false_label_rate = P(gold 0 | distant 1) = 1 - precision`` and
    ``missing_label_rate = P(distant 0 | gold 1) = 1 - recall``.
    """
    y, distant = gold["label"].to_numpy(), gold["distant_label"].to_numpy()
    w = gold["weight"].to_numpy(np.float64)

    def statistic(multiplicity: np.ndarray) -> dict[str, np.ndarray]:
        r = priors.rates(priors.confusion_rows(y, distant, w * multiplicity))
        return {"false_label_rate": 1 - r["precision"], "missing_label_rate": 1 - r["recall"]}

    counts = priors.confusion(y, distant)
    out: dict[str, Any] = {k: float(v[0]) for k, v in statistic(np.ones((1, len(gold)))).items()}
    boot = priors.group_bootstrap(
        gold["group"].to_numpy(), statistic, resamples=resamples, level=level, seed=seed
    )
    out.update({f"{name}_ci": list(ci) for name, ci in boot.intervals.items()})
    out.update(
        {
            "both_labelled": int(len(gold)),
            "counts": {  # unweighted, distant label against gold
                "both_positive": counts.tp,
                "false_labels": counts.fp,  # distant 1, gold 0
                "missing_labels": counts.fn,  # distant 0, gold 1
                "both_negative": counts.tn,
            },
            "weights": "manifest weights (the population the split stands for)",
            "interval": f"{int(round(level * 100))}% group bootstrap",
        }
    )
    return out


def gold_metrics(
    frame: pd.DataFrame,
    *,
    gold_prior: float | None,
    threshold: float,
    cost_fp: float,
    cost_fn: float,
) -> dict[str, Any] | None:
    """``{split}.gold``: the split's metrics against gold, on its gold-labelled rows only.

    None when no example of the split carries a gold label (the keys are then omitted).
    """
    gold = gold_frame(frame)
    if gold.empty:
        return None
    kw = {"prior": gold_prior, "threshold": threshold, "cost_fp": cost_fp, "cost_fn": cost_fn}
    out: dict[str, Any] = {
        "gold_examples": int(len(gold)),
        "split_examples": int(len(frame)),
        "labelled_fraction": len(gold) / len(frame),
    }
    out.update({view: view_metrics(gold, view=view, **kw) for view in VIEWS})
    y = gold["label"].to_numpy().astype(int)
    shipped = (gold["score"].to_numpy() >= SHIPPED_SCORE).astype(int)
    w = view_weights(gold, view="prior", prior=gold_prior)
    out["shipped"] = {
        "sample": decision_metrics(y, shipped, np.ones(len(y)), cost_fp=cost_fp, cost_fn=cost_fn),
        "prior": decision_metrics(y, shipped, w, cost_fp=cost_fp, cost_fn=cost_fn),
    }
    return out


def compute_metrics(
    predictions: pd.DataFrame,
    *,
    prior: float,
    cost_fp: float,
    cost_fn: float,
    resamples: int,
    level: float,
    seed: int,
    beta: float = 1.0,
    gold_prior: float | None = None,
    gold_prior_source: str | None = None,
    threshold_labels: str = "distant",
) -> dict[str, Any]:
    """metrics.json as a dict: per split and view, the thresholds, and intervals.

    ``beta`` only converts thresholds to the raw-score scale for the report. Where
    ``predictions`` has gold labels (``true_label``), ``gold_prior`` is the gold-label
    production prior (estimated from the gold-labelled rows, weighted, when None).
    ``threshold_labels`` says which labels dev_b's threshold is chosen on.
    """
    missing = sorted(set(PREDICTION_COLUMNS) - set(predictions.columns))
    if missing:
        raise ValueError(f"predictions lack columns {missing}")
    if threshold_labels not in THRESHOLD_LABELS:
        raise ValueError(
            f"threshold_labels must be one of {THRESHOLD_LABELS}, got {threshold_labels!r}"
        )
    by_split = {s: predictions[predictions["split"] == s] for s in SPLITS}
    has_gold = bool((~np.isnan(gold_labels(predictions))).any())
    if has_gold and gold_prior is None:
        gold_prior = weighted_gold_prior(
            gold_labels(predictions), predictions["weight"].to_numpy(np.float64)
        )
        gold_prior_source = gold_prior_source or "gold-labelled evaluated rows, weighted"
    dev_b = by_split["dev_b"]
    thresholds = dev_b_thresholds(
        dev_b, prior=prior, gold_prior=gold_prior, cost_fp=cost_fp, cost_fn=cost_fn
    )
    if threshold_labels == "gold" and thresholds["gold"] is None:
        reason = gold_threshold_refusal(gold_frame(dev_b))
        raise ValueError(
            f"evaluate.threshold_labels is gold but {reason}; label more of dev_b, or set "
            "evaluate.threshold_labels: distant"
        )
    threshold = float(thresholds[threshold_labels])
    bayes = priors.bayes_threshold(cost_fp=cost_fp, cost_fn=cost_fn)
    common_kw = {"prior": prior, "cost_fp": cost_fp, "cost_fn": cost_fn}
    metrics: dict[str, Any] = {
        "prior": prior,
        "beta": beta,
        "cost": {
            "false_positive": cost_fp,
            "false_negative": cost_fn,
            "unit": f"per {priors.PER_EXAMPLES} production examples",
        },
        "threshold": threshold,
        "threshold_score": float(priors.invert_prior_correction(min(threshold, 1.0), beta=beta)),
        "threshold_source": "minimum expected cost on dev_b at the prior"
        + (" against gold labels, at the gold-label prior" if threshold_labels == "gold" else ""),
        "threshold_labels": threshold_labels,
        "threshold_by_labels": thresholds if has_gold else {"distant": thresholds["distant"]},
        "bayes_threshold": bayes,
        "bayes_threshold_score": float(priors.invert_prior_correction(bayes, beta=beta)),
    }
    for split, frame in by_split.items():
        metrics[split] = {
            view: view_metrics(frame, view=view, threshold=threshold, **common_kw) for view in VIEWS
        }
        # beside the chosen rule: the Bayes rule on probabilities, and the shipped 0.5 on scores
        y = frame["label"].to_numpy().astype(int)
        w = view_weights(frame, view="prior", prior=prior)
        metrics[split]["prior_at_bayes_threshold"] = decision_metrics(
            y,
            (frame["probability"].to_numpy() >= bayes).astype(int),
            w,
            cost_fp=cost_fp,
            cost_fn=cost_fn,
        )
        # The shipped rule: raw score >= 0.5, what the team saw on dev_a and shipped.
        shipped = (frame["score"].to_numpy() >= SHIPPED_SCORE).astype(int)
        metrics[split]["shipped"] = {
            "sample": decision_metrics(
                y, shipped, np.ones(len(frame)), cost_fp=cost_fp, cost_fn=cost_fn
            ),
            "prior": decision_metrics(y, shipped, w, cost_fp=cost_fp, cost_fn=cost_fn),
        }
        gold = gold_metrics(
            frame, gold_prior=gold_prior, threshold=threshold, cost_fp=cost_fp, cost_fn=cost_fn
        )
        if gold is not None:  # a split without gold labels has no gold keys at all
            metrics[split]["gold"] = gold
            metrics[split]["label_noise"] = label_noise(
                gold_frame(frame), resamples=resamples, level=level, seed=seed
            )
    boot_kw = {"resamples": resamples, "level": level, "seed": seed, **common_kw}
    for split in ("dev_a", "test"):
        frame = by_split[split]
        chosen = (frame["probability"].to_numpy(np.float64) >= threshold).astype(int)
        shipped = (frame["score"].to_numpy() >= SHIPPED_SCORE).astype(int)
        metrics[split]["prior"].update(bootstrap_intervals(frame, chosen, **boot_kw))
        metrics[split]["shipped"]["prior"].update(bootstrap_intervals(frame, shipped, **boot_kw))
        if "gold" in metrics[split]:  # the same intervals against gold, at the gold prior
            gold, view = gold_frame(frame), metrics[split]["gold"]
            gold_kw = {**boot_kw, "prior": gold_prior}
            chosen = (gold["probability"].to_numpy(np.float64) >= threshold).astype(int)
            shipped = (gold["score"].to_numpy() >= SHIPPED_SCORE).astype(int)
            view["prior"].update(bootstrap_intervals(gold, chosen, **gold_kw))
            view["shipped"]["prior"].update(bootstrap_intervals(gold, shipped, **gold_kw))
    if has_gold:
        metrics["gold_prior"] = gold_prior
        metrics["gold_prior_source"] = gold_prior_source
    metrics["bootstrap"] = {"resamples": resamples, "level": level, "seed": seed, "unit": "group"}
    metrics["classic_example"] = classic_example()
    return common.finite_or_none(metrics)


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


# ----------------------------------------------------------------------------- plots

# Series names as a reader sees them in the legends (dvc plots colour by them; see
# .dvc/plots/): one file per picture, one `series` column, so no plot is titled by a path.
SERIES = {
    ("dev_a", "sample"): "dev_a as sampled",
    ("dev_a", "prior"): "dev_a projected to the production prior",
    ("dev_b", "prior"): "dev_b at the production prior",
    ("test", "prior"): "test at the production prior",
}
PR_SERIES = (("dev_a", "sample"), ("dev_a", "prior"), ("test", "prior"))
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
    predicted = (frame["probability"].to_numpy() >= threshold).astype(int)
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


def plot_data(
    predictions: pd.DataFrame, metrics: dict[str, Any], *, prior: float, calibration_bins: int
) -> dict[str, list[dict[str, Any]]]:
    """Data for ``dvc plots``: picture name -> records, each with a ``series`` label.

    Beside each curve (``kind`` ``curve``), points from this run's ``metrics``, so the
    pictures mark its own numbers: ``precision_recall`` holds each series' operating point
    under the shipped rule and under the chosen threshold; ``cost`` the chosen and the
    Bayes threshold (``kind`` ``chosen``, ``bayes``) at their expected cost on dev_b.
    """
    cost_fp = metrics["cost"]["false_positive"]
    cost_fn = metrics["cost"]["false_negative"]
    threshold = metrics["threshold"]
    frames = {s: predictions[predictions["split"] == s] for s in SPLITS}
    out: dict[str, list[dict[str, Any]]] = {
        "precision_recall": [],
        "roc": [],
        "calibration": [],
        "confusion": [],
    }
    for split, view in PR_SERIES:
        frame = frames[split]
        w = view_weights(frame, view=view, prior=prior)
        precision, recall, _ = precision_recall_curve(
            frame["label"], frame["probability"], sample_weight=w
        )
        out["precision_recall"] += [
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
            out["precision_recall"].append(
                {
                    "series": SERIES[split, view],
                    "kind": kind,
                    "recall": view_metrics["recall"],
                    "precision": view_metrics["precision"],
                }
            )
    for split in SPLITS:
        frame = frames[split]
        w = view_weights(frame, view="prior", prior=prior)
        # ROC is prior-free (rates within each class): the series is the set, not a view
        fpr, tpr, _ = roc_curve(frame["label"], frame["probability"], sample_weight=w)
        out["roc"] += [
            {"series": split, "fpr": float(fpr[i]), "tpr": float(tpr[i])}
            for i in _thin_along(fpr, tpr)
        ]
        table = priors.weighted_calibration(
            frame["label"].to_numpy(), frame["probability"].to_numpy(), w, n_bins=calibration_bins
        )
        out["calibration"] += [
            {
                "series": SERIES[split, "prior"],
                "predicted": float(a),
                "observed": float(b),
                "weight": float(c),
            }
            for a, b, c in zip(table["predicted"], table["observed"], table["weight"], strict=True)
        ]
        out["confusion"] += _confusion_rates(frame, threshold, split)
    dev_b = frames["dev_b"]
    curve = priors.cost_curve(
        dev_b["label"].to_numpy(),
        dev_b["probability"].to_numpy(),
        view_weights(dev_b, view="prior", prior=prior),
        cost_fp=cost_fp,
        cost_fn=cost_fn,
    )
    finite = np.isfinite(curve.thresholds)
    thresholds, costs = curve.thresholds[finite][::-1], curve.costs[finite][::-1]
    name = SERIES["dev_b", "prior"]
    out["cost"] = [
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
    out["cost"] += [
        {"series": label, "kind": kind, "threshold": float(t), "expected_cost": float(c)}
        for kind, label, t, c in marks
    ]
    out["prior_sensitivity"] = prior_sensitivity_records(metrics)
    out["label_free"] = label_free_records(metrics)
    return out


def prior_sensitivity_records(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Test's precision and recall at the chosen threshold as the production prior moves."""
    rows = (metrics.get("prior_sensitivity") or {}).get("rows", [])
    return [
        {"series": name, "prior": float(row["prior"]), "value": float(row[name])}
        for row in rows
        for name in ("precision", "recall")
        if row.get(name) is not None
    ]


def label_free_records(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Each batch's prior estimated without labels (EM, with its interval) beside the measured one."""
    out = []
    for batch, entry in (metrics.get("label_free") or {}).items():
        estimate = entry.get("estimated_prior") or {}
        measured = (entry.get("measured") or {}).get("prior")
        if estimate.get("value") is None:
            continue
        low, high = estimate.get("ci") or (estimate["value"], estimate["value"])
        if entry.get("in_sample"):  # dev_b: its own rows fitted the recalibration
            batch = f"{batch} (in sample)"
        out.append(
            {"batch": batch, "series": "estimated without labels (EM, 95% interval)",
             "prior": float(estimate["value"]), "low": low, "high": high}
        )  # fmt: skip
        if measured is not None:
            value = float(measured)  # a point: its interval is itself
            out.append(
                {"batch": batch, "series": "measured with labels", "prior": value,
                 "low": value, "high": value}
            )  # fmt: skip
    return out


# ----------------------------------------------------------------------------- report


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}"


def _ci(view: dict[str, Any], name: str, digits: int = 3) -> str:
    ci = view.get(f"{name}_ci")
    text = _fmt(view.get(name), digits)
    if ci and None not in ci:
        text += f" [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]"
    return text


def rule_table(
    metrics: dict[str, Any], view_of: Callable[[str, str], dict[str, Any]], level: int
) -> list[str]:
    """Markdown lines: dev_a as sampled and projected, dev_b and test measured, and the verdict."""
    rows = [
        ("dev_a as sampled", view_of("dev_a", "sample"), "counts"),
        ("dev_a projected to the prior", view_of("dev_a", "prior"), "per 1,000"),
        ("dev_b measured at the prior", view_of("dev_b", "prior"), "per 1,000"),
        ("test measured at the prior", view_of("test", "prior"), "per 1,000"),
    ]
    lines = [
        "| set | precision | recall | F1 | LR+ | expected cost | TP | FP | FN | TN | confusion in |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, view, unit in rows:
        cm = view["confusion"] if unit == "counts" else view["confusion_per_1000"] or {}
        digits = 0 if unit == "counts" else 1
        lines.append(
            f"| {name} | {_ci(view, 'precision')} | {_ci(view, 'recall')} | {_ci(view, 'f1')} | "
            f"{_fmt(view['lr_plus'], 1)} | {_ci(view, 'expected_cost', 1)} | "
            + " | ".join(_fmt(cm.get(k), digits) for k in ("tp", "fp", "fn", "tn"))
            + f" | {unit} |"
        )
    sampled, proj, test = (view for _, view, _ in (rows[0], rows[1], rows[3]))
    ci = proj.get("precision_ci") or [None, None]
    inside = (
        None if None in ci or test["precision"] is None else ci[0] <= test["precision"] <= ci[1]
    )
    verdict = {
        None: "cannot be compared (undefined precision)",
        True: "lies inside",
        False: "lies outside",
    }[inside]
    lines += [
        "",
        f"dev_a as sampled has precision {_fmt(sampled['precision'])}; projected to the prior it "
        f"is {_fmt(proj['precision'])}, {level}% interval [{_fmt(ci[0])}, {_fmt(ci[1])}]. "
        f"Test precision measured at the prior, {_fmt(test['precision'])}, {verdict} that "
        "interval.",
        "",
    ]
    if sampled["confusion"].get("fp") == 0:
        lines[-1:-1] = [
            "",
            "dev_a has no false positive under this rule, so every bootstrap resample has "
            "precision 1 and the interval collapses to a point: dev_a holds too few negatives "
            "to project precision this far into the tail. Trust dev_b and test here.",
        ]
    return lines


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def gold_section(metrics: dict[str, Any]) -> list[str]:
    """Markdown lines: distant- and gold-label precision and recall side by side, and the noise.

    Empty when no split has gold labels.
    """
    splits = [s for s in SPLITS if "gold" in metrics[s]]
    if not splits:
        return []
    level = int(round(metrics["bootstrap"]["level"] * 100))
    lines = [
        "## Distant labels against gold labels",
        "",
        "Every number above is measured against the distant-supervision labels. Where examples "
        "also carry a gold label (`true_label`: a person's, or the simulator's truth), the same "
        "rules are measured against gold on the gold-labelled examples only; unlabelled "
        "examples are left out, never counted as negatives.",
        "",
        f"- Production prior from distant labels: {_fmt(metrics['prior'], 4)} "
        f"({metrics.get('prior_source', '')}); from gold labels: "
        f"{_fmt(metrics.get('gold_prior'), 4)} ({metrics.get('gold_prior_source') or 'n/a'}). "
        "Gold metrics at the prior are at the gold-label prior.",
        f"- Threshold chosen on dev_b against **{metrics['threshold_labels']}** labels "
        f"(`evaluate.threshold_labels`); dev_b's cost minimum against distant labels is "
        f"{_fmt(metrics['threshold_by_labels'].get('distant'), 4)}, against gold "
        f"{_fmt(metrics['threshold_by_labels'].get('gold'), 4)}.",
        "",
        "| split | gold-labelled | of | false labels P(gold 0 \\| distant 1) | "
        "missing labels P(distant 0 \\| gold 1) |",
        "|---|---|---|---|---|",
    ]
    for split in splits:
        gold, noise = metrics[split]["gold"], metrics[split]["label_noise"]
        lines.append(
            f"| {split} | {gold['gold_examples']} | {gold['split_examples']} | "
            f"{_ci(noise, 'false_label_rate')} | {_ci(noise, 'missing_label_rate')} |"
        )
    lines += [
        "",
        f"Noise rates use the manifest weights; intervals are {level}% group bootstrap.",
        "",
        "| split | rule | view | precision, distant | precision, gold | recall, distant | "
        "recall, gold |",
        "|---|---|---|---|---|---|---|",
    ]
    rules = {
        "raw score >= 0.5": lambda m: m["shipped"],
        "chosen threshold": lambda m: m,
    }
    for split in (s for s in ("dev_b", "test") if s in splits):
        for rule, pick in rules.items():
            for view, label in (("sample", "as sampled"), ("prior", "at the prior")):
                d, g = pick(metrics[split])[view], pick(metrics[split]["gold"])[view]
                lines.append(
                    f"| {split} | {rule} | {label} | {_ci(d, 'precision')} | "
                    f"{_ci(g, 'precision')} | {_ci(d, 'recall')} | {_ci(g, 'recall')} |"
                )
    partial = [
        s
        for s in splits
        if metrics[s]["gold"]["gold_examples"] < metrics[s]["gold"]["split_examples"]
    ]
    lines += [""]
    if partial:
        lines += [
            f"Only part of {', '.join(partial)} is gold-labelled: there the distant columns "
            "cover the whole split and the gold columns the labelled part only, and the gold "
            "numbers are unbiased only if that part was drawn at random.",
            "",
        ]
    lines += [
        "Which way the noise moves the distant-label numbers:",
        "",
        "- A **missing label** (the knowledge base lacks a relation the sentences express: "
        "distant 0, gold 1) turns the model's correct alert into a distant-label false "
        "positive, so it pulls distant **precision down**; where the model misses such an "
        "example, distant labels call it a true negative, so distant **recall looks higher** "
        "than it is. At the production prior alerts are few, so a handful of missing labels "
        "among them is a large share of the measured false positives.",
        "- A **false label** (a knowledge-base fact the sentences do not express: distant 1, "
        "gold 0) turns the model's correct silence into a distant-label false negative, so it "
        "pulls distant **recall down**; where the model alerts on it anyway, distant labels "
        "call it a true positive, so distant **precision looks higher** than it is.",
        "",
    ]
    if "test" in splits:
        t, noise = metrics["test"], metrics["test"]["label_noise"]
        d, g = t["prior"], t["gold"]["prior"]

        def gap(name: str) -> str:
            if d.get(name) is None or g.get(name) is None:
                return "n/a"
            return f"{g[name] - d[name]:+.3f}"

        everyone = t["gold"]["gold_examples"] == t["gold"]["split_examples"]
        lines += [
            "Size of the effect on this run's test split ("
            + (
                "every example gold-labelled, as the built-in simulator does"
                if everyone
                else f"{t['gold']['gold_examples']} of {t['gold']['split_examples']} examples "
                "gold-labelled"
            )
            + f"): {_pct(noise['false_label_rate'])} of distant positives are false and "
            f"{_pct(noise['missing_label_rate'])} of gold positives carry no distant label. "
            f"At the chosen threshold and the prior, precision is {_fmt(d['precision'])} "
            f"against distant labels and {_fmt(g['precision'])} against gold ({gap('precision')}); "
            f"recall {_fmt(d['recall'])} against {_fmt(g['recall'])} ({gap('recall')}).",
            "",
        ]
    return lines


def render_report(metrics: dict[str, Any]) -> str:
    """reports/report.md: the table, the worked example and the threshold in production terms."""
    level = int(round(metrics["bootstrap"]["level"] * 100))
    cost = metrics["cost"]
    lines = [
        "# Evaluation at the production prior",
        "",
        "Generated by `python -m stages.evaluate`; do not edit by hand.",
        "",
        f"- Production prior: **{_fmt(metrics['prior'], 4)}** "
        f"(1:{_fmt(1 / metrics['prior'] - 1, 0) if metrics['prior'] else 'n/a'}); "
        f"{metrics.get('prior_source', '')}.",
        f"- Prior correction: `p = beta*s / (beta*s - s + 1)` with beta = "
        f"{_fmt(metrics['beta'], 4)} from train"
        + (
            f", then moved from the prior train's weights describe "
            f"({_fmt(metrics['prior_of_model'], 4)}) to this one."
            if metrics.get("prior_of_model") and metrics["prior_of_model"] != metrics["prior"]
            else "."
        ),
        f"- Costs: false positive {cost['false_positive']:g}, false negative "
        f"{cost['false_negative']:g}; expected cost is {cost['unit']}.",
        f"- Threshold chosen on dev_b (minimum expected cost): probability >= "
        f"**{_fmt(metrics['threshold'], 4)}** (raw score >= {_fmt(metrics['threshold_score'], 4)}); "
        f"Bayes threshold c_FP/(c_FP+c_FN) = {_fmt(metrics['bayes_threshold'], 4)} "
        f"(raw score {_fmt(metrics['bayes_threshold_score'], 4)}); chosen against "
        f"{metrics.get('threshold_labels', 'distant')} labels.",
        f"- Intervals: {level}% group bootstrap ({metrics['bootstrap']['resamples']} resamples "
        "of entity groups).",
        "",
        "## What the team saw, and what production gives: the shipped rule (raw score >= 0.5)",
        "",
        *rule_table(metrics, lambda split, view: metrics[split]["shipped"][view], level),
        "## Dev and test at the threshold chosen on dev_b",
        "",
        *rule_table(metrics, lambda split, view: metrics[split][view], level),
        "Threshold-free scores, and expected cost per 1,000 under each rule, at the prior "
        "(probabilities after correction):",
        "",
        "| set | AP as sampled | AP at the prior | ROC AUC | log loss | Brier | "
        "expected cost, chosen | at Bayes threshold | at raw score 0.5 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for split in SPLITS:
        view = metrics[split]["prior"]
        lines.append(
            f"| {split} | {_fmt(metrics[split]['sample']['average_precision'])} | "
            f"{_fmt(view['average_precision'])} | {_fmt(view['roc_auc'])} | "
            f"{_fmt(view['log_loss'], 4)} | {_fmt(view['brier'], 4)} | "
            f"{_fmt(view['expected_cost'], 1)} | "
            f"{_fmt(metrics[split]['prior_at_bayes_threshold']['expected_cost'], 1)} | "
            f"{_fmt(metrics[split]['shipped']['prior']['expected_cost'], 1)} |"
        )
    classic = metrics["classic_example"]
    lines += [
        "",
        "## Why dev looks better than production: the classic example",
        "",
        "At 1:2 a classifier with TP 97, FN 3, FP 3, TN 197 has precision 97/(97+3) = "
        f"{_fmt(classic['precision_sampled'], 2)} and recall {_fmt(classic['recall'], 2)}. "
        "Production is 1:100, so each negative in the dev set stands for 50: multiply the "
        "negative row by 50 (FP 150, TN 9,850). Recall is unchanged; precision becomes "
        f"97/(97+150) = {_fmt(classic['precision_projected'])}. Siblini et al.'s calibrated "
        f"precision gives the same number ({_fmt(classic['precision_siblini'])}). Recall and "
        "LR+ do not depend on the class ratio; precision, F1, AP and expected cost do.",
        "",
        "## What the threshold means in production",
        "",
    ]
    terms = metrics["test"]["prior"]
    lines += [
        f"Per 1,000 production examples (test, at the prior), the rule raises "
        f"**{_fmt(terms['alerts_per_1000'], 1)} alerts**, of which "
        f"{_fmt(terms['true_alerts_per_1000'], 1)} are true and "
        f"{_fmt(terms['false_alerts_per_1000'], 1)} false; of "
        f"{_fmt(terms['positives_per_1000'], 1)} positives it misses "
        f"{_fmt(terms['missed_per_1000'], 1)}. Expected cost "
        f"{_ci(terms, 'expected_cost', 1)} per 1,000.",
        "",
        "For comparison, the shipped rule (raw score >= 0.5, which silently assumes a false "
        f"negative costs 1/beta = {_fmt(1 / metrics['beta'] if metrics['beta'] else None, 0)} "
        "false positives) raises "
        f"{_fmt(metrics['test']['shipped']['prior']['alerts_per_1000'], 1)} alerts per 1,000 "
        f"with precision {_fmt(metrics['test']['shipped']['prior']['precision'])}.",
        "",
    ]
    lines += gold_section(metrics)
    lines += label_free_lines(metrics)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- recalibration


UNCALIBRATED = "probability_prior_corrected"  # predictions column: before recalibration
LABEL_FREE_SPLITS = ("dev_b", "test")
LABEL_FREE_RATIOS = (30, 100, 250)  # test resampled to 1:N (N negatives a positive), labels hidden


def calibration_offset(*, beta: float, shift: tuple[float, float] | None) -> float:
    """``logit(p at the prior) - logit(raw score)``: what the prior correction adds."""
    offset = float(np.log(beta))
    if shift is not None:
        offset += float(np.log(priors.odds(shift[1]) / priors.odds(shift[0])))
    return offset


def fit_recalibration(
    predictions: pd.DataFrame,
    *,
    prior: float,
    training_prior: float | None,
    offset: float,
) -> tuple[cal.Calibration, dict[str, Any]]:
    """Choose the recalibration by dev_b's log loss at the prior (``stages.calibration``).

    Candidates: none, temperature and Platt on dev_a at the training prior (before
    the prior correction), Platt and isotonic on dev_b at the production prior
    (scored by group cross-fitting). Returns the chosen map and the record for metrics.json.
    """
    frames = {s: predictions[predictions["split"] == s] for s in ("dev_a", "dev_b")}
    dev_b = frames["dev_b"]
    dev_b_args = (
        dev_b["probability"].to_numpy(np.float64),
        dev_b["label"].to_numpy(),
        view_weights(dev_b, view="prior", prior=prior),
        dev_b["group"].to_numpy(),
    )
    dev_a = frames["dev_a"]
    dev_a_args = None
    if len(dev_a) and dev_a["label"].nunique() == 2:
        weights = dev_a["weight"].to_numpy(np.float64)
        dev_a_args = (
            dev_a["probability"].to_numpy(np.float64),
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
        "applies_to": "sigmoid(slope * logit(p) + intercept), p = probability after the "
        "prior correction",
    }
    return chosen, record


def recalibrate_predictions(
    predictions: pd.DataFrame, calibration: cal.Calibration
) -> pd.DataFrame:
    """``probability`` recalibrated; the prior-corrected one kept as ``probability_prior_corrected``."""
    out = predictions.copy()
    corrected = out["probability"].to_numpy(np.float64)
    out.insert(out.columns.get_loc("probability"), UNCALIBRATED, corrected)
    out["probability"] = calibration.apply(corrected)
    return out


def calibration_metrics(
    predictions: pd.DataFrame, *, prior: float, calibration_bins: int
) -> dict[str, dict[str, Any]]:
    """Per split at the prior: calibration-in-the-large and weighted calibration error."""
    out: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        frame = predictions[predictions["split"] == split]
        y, w = frame["label"].to_numpy(), view_weights(frame, view="prior", prior=prior)
        entry = cal.calibration_quality(
            y, frame["probability"].to_numpy(np.float64), w, n_bins=calibration_bins
        )
        if UNCALIBRATED in frame.columns:
            entry["before_recalibration"] = cal.calibration_quality(
                y, frame[UNCALIBRATED].to_numpy(np.float64), w, n_bins=calibration_bins
            )
        out[split] = entry
    return out


def _resampled_to_prior(
    frame: pd.DataFrame, target: float, rng: np.random.Generator
) -> pd.DataFrame | None:
    """``frame`` with positives or negatives subsampled so its positive fraction is ``target``."""
    y = frame["label"].to_numpy()
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) == 0 or len(neg) == 0:
        return None
    if target < len(pos) / len(y):
        k = int(round(target * len(neg) / (1 - target)))
        pos = np.sort(rng.choice(pos, size=k, replace=False)) if k >= 1 else None
    else:
        k = int(round(len(pos) * (1 - target) / target))
        neg = np.sort(rng.choice(neg, size=k, replace=False)) if k >= 1 else None
    if pos is None or neg is None:
        return None
    return frame.iloc[np.sort(np.concatenate([pos, neg]))]


def label_free_metrics(
    predictions: pd.DataFrame,
    *,
    prior: float,
    threshold: float,
    cost_fp: float,
    cost_fn: float,
    calibration: cal.Calibration,
    training_prior: float | None,
    resamples: int,
    level: float,
    seed: int,
) -> dict[str, Any]:
    """What the label-free estimate would have said on dev_b, test and test at other priors.

    Each batch is estimated as ``score --summary`` does (labels hidden, dev_b as the
    reference, resampled by group), and the measured numbers (manifest weights, so
    at the batch's own label rate) stand beside the estimates.
    """
    uncal = UNCALIBRATED if UNCALIBRATED in predictions.columns else "probability"
    reference = quantify.reference_from_rows(
        predictions["split"].to_numpy(),
        predictions["group"].to_numpy(),
        predictions["label"].to_numpy(),
        predictions["weight"].to_numpy(np.float64),
        predictions[uncal].to_numpy(np.float64),
        prior=prior,
        training_prior=training_prior,
        calibration=calibration,
    )
    kw = {"prior": prior, "threshold": threshold, "cost_fp": cost_fp, "cost_fn": cost_fn}
    rng = np.random.default_rng(seed)
    batches: dict[str, pd.DataFrame] = {
        s: predictions[predictions["split"] == s] for s in LABEL_FREE_SPLITS
    }
    for ratio in LABEL_FREE_RATIOS:
        resampled = _resampled_to_prior(batches["test"], 1.0 / (1.0 + ratio), rng)
        if resampled is not None:
            batches[f"test_at_1_{ratio}"] = resampled
    out: dict[str, Any] = {}
    for name, frame in batches.items():
        summary = quantify.estimate_batch(
            frame[uncal].to_numpy(np.float64),
            calibration=calibration,
            reference=reference,
            groups=frame["group"].to_numpy(),
            resamples=resamples,
            level=level,
            seed=seed,
            **kw,
        )
        y, w = frame["label"].to_numpy(), frame["weight"].to_numpy(np.float64)
        decision = (frame["probability"].to_numpy(np.float64) >= threshold).astype(int)
        summary["measured"] = {
            "prior": priors.estimate_prior(y, w),
            **quantify.measured_performance(
                y, decision, weights=w, cost_fp=cost_fp, cost_fn=cost_fn
            ),
        }
        summary["in_sample"] = name == "dev_b"  # dev_b is also the reference (and maybe the fit)
        out[name] = summary
    return out


PRIOR_FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0)  # prior sensitivity: half to twice the estimate


def prior_sensitivity(
    predictions: pd.DataFrame,
    *,
    prior: float,
    threshold: float,
    cost_fp: float,
    cost_fn: float,
    split: str = "test",
) -> list[dict[str, float]]:
    """``split``'s precision, recall, alerts and cost at the threshold across plausible priors.

    The rule stays as the bundle ships it (probability at the estimated prior >=
    threshold); only the class balance the split is weighted to moves, because the
    prior is often a guess.
    """
    frame = predictions[predictions["split"] == split]
    y = frame["label"].to_numpy().astype(int)
    decision = (frame["probability"].to_numpy(np.float64) >= threshold).astype(int)
    out = []
    for factor in PRIOR_FACTORS:
        at = float(min(prior * factor, 0.5))
        w = view_weights(frame, view="prior", prior=at)
        m = decision_metrics(y, decision, w, cost_fp=cost_fp, cost_fn=cost_fn)
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


def add_label_free(
    metrics: dict[str, Any],
    predictions: pd.DataFrame,
    *,
    calibration: cal.Calibration,
    training_prior: float | None,
    calibration_bins: int,
) -> dict[str, Any]:
    """metrics.json's calibration and label-free keys, added to ``metrics`` (returned)."""
    prior, threshold = metrics["prior"], metrics["threshold"]
    for split, entry in calibration_metrics(
        predictions, prior=prior, calibration_bins=calibration_bins
    ).items():
        metrics[split]["calibration_at_prior"] = entry
    if not calibration.is_identity:  # the raw-score equivalents go through the recalibration
        beta = metrics["beta"]
        for key in ("threshold", "bayes_threshold"):
            uncal = float(calibration.invert(min(metrics[key], 1.0)))
            metrics[f"{key}_score"] = float(priors.invert_prior_correction(uncal, beta=beta))
    metrics["prior_sensitivity"] = {
        "split": "test",
        "rule": "probability >= threshold, unchanged",
        "rows": prior_sensitivity(
            predictions,
            prior=prior,
            threshold=threshold,
            cost_fp=metrics["cost"]["false_positive"],
            cost_fn=metrics["cost"]["false_negative"],
        ),
    }
    boot = metrics["bootstrap"]
    metrics["label_free"] = label_free_metrics(
        predictions,
        prior=prior,
        threshold=threshold,
        cost_fp=metrics["cost"]["false_positive"],
        cost_fn=metrics["cost"]["false_negative"],
        calibration=calibration,
        training_prior=training_prior,
        resamples=boot["resamples"],
        level=boot["level"],
        seed=boot["seed"],
    )
    return common.finite_or_none(metrics)


def _est(entry: dict[str, Any], digits: int = 3) -> str:
    ci = entry.get("ci") or [None, None]
    text = _fmt(entry.get("value"), digits)
    if None not in ci:
        text += f" [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]"
    return text


def label_free_lines(metrics: dict[str, Any]) -> list[str]:
    """Markdown: calibration at the prior, and the label-free estimates beside the measurements."""
    lines = ["## Calibration at the prior", ""]
    record = metrics.get("calibration")
    if record:
        chosen = record["chosen"]
        lines += [
            f"Recalibration: **{chosen['method']}**"
            + (f" fitted on {chosen['fitted_on']}" if chosen.get("fitted_on") else "")
            + f" ({record['chosen_by']}); "
            + (
                f"a step map with {len(chosen.get('knots_x') or [])} knots"
                if chosen["method"] == "isotonic"
                else f"slope {_fmt(chosen['slope'])}, intercept {_fmt(chosen['intercept'])}"
            )
            + " on the log-odds of the prior-corrected probability.",
            "",
            "| candidate | fitted on | dev_b log loss | scored |",
            "|---|---|---|---|",
            *(
                f"| {c['method']} | {c['fitted_on'] or '-'} | {_fmt(c['dev_b_log_loss'], 5)} | "
                f"{c['scored_on']} |"
                for c in record["candidates"]
            ),
            "",
        ]
    lines += [
        "| split | label rate at the prior | mean probability, prior-corrected | "
        "mean probability, recalibrated | calibration error, prior-corrected | recalibrated |",
        "|---|---|---|---|---|---|",
    ]
    for split in SPLITS:
        c = metrics[split].get("calibration_at_prior")
        if not c:
            continue
        b = c.get("before_recalibration") or c
        lines.append(
            f"| {split} | {_fmt(c['label_rate'], 4)} | {_fmt(b['mean_probability'], 4)} | "
            f"{_fmt(c['mean_probability'], 4)} | {_fmt(b['calibration_error'], 4)} | "
            f"{_fmt(c['calibration_error'], 4)} |"
        )
    lines += [
        "",
        "Calibration error: the weighted mean of |mean probability - observed rate| over "
        "equal-weight bins, with the weights at the prior.",
        "",
    ]
    sensitivity = metrics.get("prior_sensitivity")
    if sensitivity:
        lines += [
            "## Prior sensitivity: test at the threshold, across plausible priors",
            "",
            "The prior is often a guess. The same rule (probability >= threshold) on test, "
            "weighted to half to twice the production prior:",
            "",
            "| prior | x estimate | precision | recall | alerts per 1,000 | expected cost per 1,000 |",
            "|---|---|---|---|---|---|",
            *(
                f"| {_fmt(r['prior'], 4)} | {r['factor']:g} | {_fmt(r['precision'])} | "
                f"{_fmt(r['recall'])} | {_fmt(r['alerts_per_1000'], 1)} | "
                f"{_fmt(r['expected_cost'], 1)} |"
                for r in sensitivity["rows"]
            ),
            "",
        ]
    free = metrics.get("label_free")
    if not free:
        return lines
    lines += [
        "## What the label-free estimate would have said",
        "",
        "Each batch estimated with its labels hidden, as `python -m stages.score --summary` "
        "does: EM on the recalibrated probabilities, ACC and PACC with dev_b's rates, and the "
        "threshold's performance from the probabilities moved to the estimated prior (CBPE). "
        "Intervals resample the batch's groups and dev_b's (the recalibration refitted on "
        "each). dev_b is its own reference (in sample); `test_at_1_N` is test with positives "
        "or negatives subsampled to 1:N.",
        "",
        "| batch | examples | measured prior | EM | ACC | PACC | prior shift | KS p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in free.items():
        est, cross = s["estimated_prior"], s["estimated_prior"]["cross_check"]
        lines.append(
            f"| {name} | {s['examples']} | {_fmt(s['measured']['prior'], 4)} | "
            f"{_est(est, 4)} | {_est(cross.get('acc', {}), 4)} | {_est(cross.get('pacc', {}), 4)} | "
            f"{s['drift']['prior_shift']} | {_fmt(s['drift']['p_value'], 3)} |"
        )
    lines += [
        "",
        "| batch | precision measured | estimated | recall measured | estimated | "
        "alerts per 1,000 | cost per 1,000 measured | estimated |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in free.items():
        e, m = s["estimated_at_threshold"], s["measured"]
        lines.append(
            f"| {name} | {_fmt(m['precision'])} | {_est(e['precision'])} | {_fmt(m['recall'])} | "
            f"{_est(e['recall'])} | {_fmt(m['alerts_per_1000'], 1)} | "
            f"{_fmt(m['expected_cost'], 1)} | {_est(e['expected_cost'], 1)} |"
        )
    lines.append("")
    return lines


# ----------------------------------------------------------------------------- stage


def evaluate_predictions(
    predictions: pd.DataFrame,
    *,
    params: dict[str, Any],
    prior: float,
    prior_source: str,
    beta: float,
    extra: dict[str, Any] | None = None,
    gold_prior: float | None = None,
    gold_prior_source: str | None = None,
    calibration: cal.Calibration | None = None,
    training_prior: float | None = None,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]], str]:
    """Everything after scoring: (metrics, plot data, report text); ``extra`` goes into metrics.

    ``calibration`` is the recalibration already applied to ``probability`` (the
    prior-corrected values kept in ``probability_prior_corrected``); the label-free
    estimators start from the prior-corrected values and refit it when resampling.
    """
    opts = check_params(params)
    metrics = compute_metrics(
        predictions,
        prior=prior,
        cost_fp=opts["cost_fp"],
        cost_fn=opts["cost_fn"],
        resamples=opts["resamples"],
        level=opts["level"],
        seed=opts["seed"],
        beta=beta,
        gold_prior=gold_prior,
        gold_prior_source=gold_prior_source,
        threshold_labels=opts["threshold_labels"],
    )
    metrics["prior_source"] = prior_source
    metrics.update(common.finite_or_none(extra or {}))
    metrics = add_label_free(
        metrics,
        predictions,
        calibration=calibration or cal.IDENTITY,
        training_prior=training_prior,
        calibration_bins=opts["calibration_bins"],
    )
    plots = plot_data(predictions, metrics, prior=prior, calibration_bins=opts["calibration_bins"])
    return metrics, plots, render_report(metrics)


def score_examples(
    model_dir: Path,
    dataset_dir: Path,
    example_ids: list[str],
    *,
    batch_size: int,
    min_rows: int = 1,
    precision: str = "auto",
    onednn: str = "auto",
    compute_record: dict[str, Any] | None = None,
) -> np.ndarray:
    """Load models/model.keras (safe mode) and score ``example_ids`` streaming from Parquet.

    ``precision``/``onednn`` as in ``stages.hardware``: a model trained in bf16 scores in
    bf16 only where the CPU has it natively, in float32 elsewhere. The resolved choice is
    stored into ``compute_record`` when given.
    """
    hardware.apply_onednn(hardware.machine_compute(precision, onednn))  # before TF's import
    common.quiet_tensorflow()
    import keras

    from dsprior import cnn  # registers the custom layers before loading
    from dsprior.batches import predict_scores

    model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True)
    trained_in = cnn.model_precision(model)
    compute = hardware.machine_compute(precision, onednn, model_precision=trained_in)
    logger.info(
        "scoring in %s, oneDNN %s (%s)", compute.precision, compute.onednn_env, compute.reason
    )
    model = cnn.with_precision(model, compute.precision)
    if compute_record is not None:
        compute_record.update(compute.record(), model_trained_in=trained_in)
    return predict_scores(model, dataset_dir, example_ids, batch_size=batch_size, min_rows=min_rows)


def write_outputs(
    reports: Path,
    predictions: pd.DataFrame,
    metrics: dict[str, Any],
    plots: dict[str, list[dict[str, Any]]],
    report: str,
) -> None:
    """Rewrite the stage's outputs under ``reports`` (and nothing else there)."""
    import shutil

    reports.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(reports / "predictions.parquet", index=False)
    common.write_json(reports / "metrics.json", metrics)
    (reports / "report.md").write_text(report)
    plot_dir = reports / "evaluate_plots"
    shutil.rmtree(plot_dir, ignore_errors=True)
    for name, records in plots.items():  # one file per picture: evaluate_plots/cost.json
        common.write_json(plot_dir / f"{name}.json", records)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--reports", type=Path, required=True)
    args = parser.parse_args(argv)
    common.setup_logging()

    params = common.load_params(args.params, "evaluate")
    opts = check_params(params)
    manifest = pd.read_parquet(args.manifest)
    rows = evaluation_rows(manifest)
    train_info = json.loads((args.model_dir / "train.json").read_text())
    beta = float(train_info["beta"])

    estimated, source = estimate_production_prior(manifest)
    gold_prior, gold_source = estimate_gold_prior(manifest) if GOLD in manifest else (None, None)
    prior = estimated if opts["prior"] is None else float(opts["prior"])
    if opts["prior"] is not None:
        source = "evaluate.prior"
    # beta restores the prior of the population train's weights describe; when that differs
    # from the production prior used here, move the probabilities on (Saerens et al. 2002)
    model_prior = train_info.get("production_prior_estimate")
    shift = priors.prior_shift(model_prior=model_prior, prior=prior)
    logger.info("production prior %.5f (%s); beta %.5f; shift %s", prior, source, beta, shift)

    scoring: dict[str, Any] = {}
    scores = score_examples(
        args.model_dir,
        args.dataset,
        rows["example_id"].tolist(),
        batch_size=opts["batch_size"],
        min_rows=int(train_info.get("min_rows", 1)),  # pad as train did when it scored
        precision=opts["precision"],
        onednn=opts["onednn"],
        compute_record=scoring,
    )
    predictions = build_predictions(rows, scores, beta=beta, shift=shift)
    training_prior = train_info.get("training_prior")
    calibration, calibration_record = fit_recalibration(
        predictions,
        prior=prior,
        training_prior=training_prior,
        offset=calibration_offset(beta=beta, shift=shift),
    )
    logger.info("recalibration: %s", calibration)
    predictions = recalibrate_predictions(predictions, calibration)
    metrics, plots, report = evaluate_predictions(
        predictions,
        params=params,
        prior=prior,
        prior_source=source,
        beta=beta,
        gold_prior=gold_prior,
        gold_prior_source=gold_source,
        calibration=calibration,
        training_prior=training_prior,
        extra={
            "calibration": calibration_record,
            "prior_estimated": estimated,
            "prior_of_model": model_prior,
            # what trained the model and what scored it (stages.hardware)
            "compute": {"train": train_info.get("compute"), "evaluate": scoring},
        },
    )
    write_outputs(args.reports, predictions, metrics, plots, report)
    for split in SPLITS:
        logger.info(
            "%s precision sampled %s, at prior %s",
            split,
            metrics[split]["sample"]["precision"],
            metrics[split]["prior"]["precision"],
        )


if __name__ == "__main__":
    common.run_main(main)
