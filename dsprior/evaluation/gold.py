"""Gold labels against the distant ones: the gold-labelled rows, gold metrics and label noise.

Where examples carry a gold label (``true_label``: a person's, or the simulator's truth;
null where nobody labelled the example), the same metrics are measured against gold on
the gold-labelled examples only; unlabelled examples are left out, never counted as
negatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dsprior import priors

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


@dataclass(frozen=True)
class Labels:
    """Which labels a split is measured against, and the production prior they weigh to.

    ``distant``: the split as it is; ``gold``: its gold-labelled rows with ``label`` set to the
    gold label (``gold_frame``). Thresholds, metrics and intervals are computed once, on
    ``rows(frame)`` at ``prior``, for either labels: gold is a view, not a second code path.
    """

    name: str  # one of LABELS
    prior: float | None
    # the rows the prior was estimated from (label, weight, group; true_label for gold):
    # its sampling uncertainty goes into every interval at the prior; None: taken as known
    prior_rows: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if self.name not in LABELS:
            raise ValueError(f"labels must be one of {LABELS}, got {self.name!r}")

    def rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` seen through these labels: ``label`` is theirs; unlabelled rows dropped."""
        return gold_frame(frame) if self.name == "gold" else frame

    def threshold_refusal(self, dev_b_rows: pd.DataFrame) -> str | None:
        """Why ``dev_b_rows`` (``rows`` of dev_b) are too few to choose a threshold on, or None.

        Distant labels label every row, so only gold can be too scarce.
        """
        return gold_threshold_refusal(dev_b_rows) if self.name == "gold" else None

    def estimated_from(self, rows: pd.DataFrame | None) -> Labels:
        """These labels with ``rows`` as their prior's source where the prior is those rows'
        rate (it was estimated from them); unchanged, the prior taken as known, otherwise
        (a configured prior, or one estimated from other rows)."""
        if rows is None or self.prior is None:
            return self
        seen = self.rows(rows)
        w = seen["weight"].to_numpy(np.float64)
        if seen.empty or w.sum() <= 0:
            return self
        rate = float(np.dot(seen["label"].to_numpy(np.float64), w) / w.sum())
        if not np.isclose(rate, self.prior, rtol=1e-9, atol=0.0):
            return self
        return Labels(self.name, self.prior, rows)

    def prior_refusal(self, *, bootstrap: priors.Bootstrap) -> str | None:
        """Why intervals at this prior are not printed, or None: it was estimated from rows
        holding fewer label-1 examples by these labels than ``bootstrap.min_prior_positives``.
        Then its draws understate how far it can be off (a few positives in a few entity
        groups), and so does every interval at it: the coverage benchmark found dev_a's
        projected cost and test's measured cost holding far less often (docs/methods.md).
        A prior taken as known (no ``prior_rows``) is never refused."""
        if self.prior_rows is None or self.prior is None:
            return None
        positives = int((self.rows(self.prior_rows)["label"].to_numpy() == 1).sum())
        if positives >= bootstrap.min_prior_positives:
            return None
        return (
            f"the {self.name}-label prior was estimated from {positives} positives, fewer than "
            f"evaluate.bootstrap.min_prior_positives = {bootstrap.min_prior_positives}: at so "
            f"uncertain a prior, an interval of precision, recall, F1 or cost does not hold "
            f"its {bootstrap.level:.0%}"
        )

    def prior_draws(self, *, bootstrap: priors.Bootstrap) -> np.ndarray | None:
        """``bootstrap.resamples`` draws of the prior (``priors.rate_draws`` on ``prior_rows`` through these
        labels), or None where the prior is taken as known."""
        if self.prior_rows is None or self.prior is None:
            return None
        rows = self.rows(self.prior_rows)
        if rows.empty:
            return None
        rate, draws = priors.rate_draws(
            rows["label"].to_numpy(np.float64),
            rows["weight"].to_numpy(np.float64),
            rows["group"].to_numpy(),
            size=bootstrap.resamples,
            rng=np.random.default_rng([int(bootstrap.seed), 29]),
        )
        if not np.isclose(rate, self.prior, rtol=1e-9, atol=0.0):
            raise ValueError(
                f"the {self.name}-label prior {self.prior!r} is not the rate {rate!r} of the "
                "rows given as its source (prior_rows); pass the rows it was estimated from"
            )
        return draws


LABELS = ("distant", "gold")


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
    """How the distant labels err where both labels exist, with intervals (Jeffreys' on the
    effective count of the gold rate within each distant label, ``priors.rates_draws``:
    never one value at 0 events).

    The distant label is scored as a prediction of the gold one, with the manifest
    weights (which undo every thinning, so the rates are the population's):
    ``false_label_rate = P(gold 0 | distant 1) = 1 - precision`` and
    ``missing_label_rate = P(distant 0 | gold 1) = 1 - recall``.
    """
    y, distant = gold["label"].to_numpy(), gold["distant_label"].to_numpy()
    w, groups = gold["weight"].to_numpy(np.float64), gold["group"].to_numpy()
    # Thinning samples each distant label at its own rate, so the rows are two strata: the
    # gold rate within each (q1 = P(gold 1 | distant 1), q0 = P(gold 1 | distant 0)) is an
    # honest count there, and both noise rates follow from them and the strata's weights:
    # false = 1 - q1, missing = W0 q0 / (W0 q0 + W1 q1). Counting the missing labels among
    # the gold positives instead would weigh a handful of heavy rows as many.
    stratum_weight = np.array([w[distant == 0].sum(), w[distant == 1].sum()])
    q, q_draws = priors.rates_draws(
        np.vstack([y == 1, y == 1]),
        np.vstack([w * (distant == 0), w * (distant == 1)]),
        groups,
        size=bootstrap.resamples,
        rng=np.random.default_rng([int(bootstrap.seed), 31]),
    )

    def noise(q0: np.ndarray, q1: np.ndarray) -> dict[str, np.ndarray]:
        missed, found = stratum_weight[0] * q0, stratum_weight[1] * q1
        with np.errstate(invalid="ignore", divide="ignore"):
            return {"false_label_rate": 1.0 - q1, "missing_label_rate": missed / (missed + found)}

    point = noise(np.array([q[0]]), np.array([q[1]]))
    drawn = noise(q_draws[0], q_draws[1])
    out: dict[str, Any] = {}
    for name in ("false_label_rate", "missing_label_rate"):
        out[name] = float(point[name][0])
        out[f"{name}_ci"] = list(
            priors.draws_interval(out[name], drawn[name], level=bootstrap.level)
        )
    counts = priors.confusion(y, distant)
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
            "interval": f"{int(round(bootstrap.level * 100))}% Jeffreys on the group bootstrap's "
            "effective count",
        }
    )
    return out
