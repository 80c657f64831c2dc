"""Gold labels against the distant ones: the gold-labelled rows, gold metrics and label noise.

Where examples carry a gold label (``true_label``: a person's, or the simulator's truth;
null where nobody labelled the example), the same metrics are measured against gold on
the gold-labelled examples only; unlabelled examples are left out, never counted as
negatives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dsprior import priors
from dsprior.evaluation.measures import (
    VIEWS,
    decision_metrics,
    shipped_decisions,
    view_metrics,
    view_weights,
)

GOLD = "true_label"  # optional predictions/manifest column: the gold label, null where unlabelled
# threshold_labels: gold needs at least this much gold on dev_b: fewer gold positives than this
# make the cost minimum one or two examples' decision
GOLD_THRESHOLD_MIN = {"examples": 100, "positives": 10, "negatives": 10}


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


def label_noise(gold: pd.DataFrame, *, bootstrap: priors.Bootstrap) -> dict[str, Any]:
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
        gold["group"].to_numpy(),
        statistic,
        resamples=bootstrap.resamples,
        level=bootstrap.level,
        seed=bootstrap.seed,
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
            "interval": f"{int(round(bootstrap.level * 100))}% group bootstrap",
        }
    )
    return out


def gold_metrics(
    frame: pd.DataFrame,
    *,
    gold_prior: float | None,
    threshold: float,
    costs: priors.Costs,
) -> dict[str, Any] | None:
    """``{split}.gold``: the split's metrics against gold, on its gold-labelled rows only.

    None when no example of the split carries a gold label (the keys are then omitted).
    """
    gold = gold_frame(frame)
    if gold.empty:
        return None
    out: dict[str, Any] = {
        "gold_examples": int(len(gold)),
        "split_examples": int(len(frame)),
        "labelled_fraction": len(gold) / len(frame),
    }
    out.update(
        {
            view: view_metrics(gold, view=view, prior=gold_prior, threshold=threshold, costs=costs)
            for view in VIEWS
        }
    )
    y = gold["label"].to_numpy().astype(int)
    shipped = shipped_decisions(gold)
    w = view_weights(gold, view="prior", prior=gold_prior)
    out["shipped"] = {
        "sample": decision_metrics(y, shipped, np.ones(len(y)), costs=costs),
        "prior": decision_metrics(y, shipped, w, costs=costs),
    }
    return out
