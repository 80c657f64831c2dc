"""Label-free estimation for a scored batch: its prior, the threshold's performance, drift.

Pure functions on arrays; no files. docs/methods.md, sections 8 and 9, has the sources:

- ``em_prior``: the EM / SLD prior estimate (Saerens, Latinne, Decaestecker 2002)
  on probabilities calibrated at ``prior``. For two classes the EM fixed point is
  the maximum-likelihood mixture weight, and the log-likelihood is concave in it,
  so it is found directly with ``scipy.optimize.brentq`` on the score equation
  instead of iterating (the tests check it against QuaPy's EMQ and a plain
  iteration);
- ``adjusted_count`` (ACC, Forman 2008) and ``probabilistic_adjusted_count``
  (PACC, Bella et al. 2010) with a labelled reference's rates (dev_b);
- ``expected_performance``: confidence-based performance estimation (NannyML's
  CBPE) at a threshold, from calibrated probabilities at the batch's prior;
- ``estimate_batch``: all of the above with percentile-bootstrap intervals that
  resample the batch (by group where groups are known) *and* the labelled
  reference (by group), refitting the recalibration on the resampled reference
  where it was fitted there, so that the reference's own uncertainty is in every
  interval; plus a KS test of the batch's probabilities against the reference's. The
  intervals of precision, recall and cost are for the batch's realised values: each
  resample measures the whole batch against labels drawn from that resample's
  probabilities (CBPE's expectation alone leaves out which examples happen to be
  positive, and covered a weak model's realised recall about half the time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, NotRequired, TypedDict

import numpy as np
from scipy.optimize import brentq
from scipy.stats import ks_2samp

from dsprior import calibration as cal
from dsprior import priors

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

MIN_EXPECTED_POSITIVES = 10.0  # fewer estimated positives in a batch: a plain warning
EM_METHOD = "EM (Saerens et al. 2002) on the calibrated probabilities"


def _wsum(weights: np.ndarray, values: np.ndarray | float) -> float:
    """``sum(weights * values)`` without BLAS: a threaded ``ddot`` crawls on busy small machines."""
    return float(np.sum(weights * values))


def _probabilities(probability: np.ndarray, name: str = "probability") -> np.ndarray:
    p = np.asarray(probability, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"{name} must be finite probabilities in [0, 1]")
    return p


def em_prior(probability: np.ndarray, *, prior: float, weights: np.ndarray | None = None) -> float:
    """The batch prior that EM / SLD converges to, for probabilities calibrated at ``prior``.

    Each example's likelihood ratio is ``r = odds(p) / odds(prior)``; the EM fixed
    point solves ``sum w (r - 1) / (pi r + 1 - pi) = 0``, which is decreasing in
    ``pi``, so it is 0 or 1 at the ends or the unique root between.
    """
    p = np.clip(_probabilities(probability), cal.EPS, 1.0 - cal.EPS)
    w = priors.check_weights(weights, len(p))
    prior = priors.check_rate("prior", prior)
    if len(p) == 0 or w.sum() <= 0:
        raise ValueError("em_prior needs at least one example with positive weight")
    a = priors.odds(p) / priors.odds(prior) - 1.0

    def score(pi: float) -> float:  # d/dpi of the log-likelihood, up to a positive factor
        return float(_wsum(w, a / (1.0 + pi * a)))

    if score(0.0) <= 0:
        return 0.0
    if score(1.0) >= 0:
        return 1.0
    return float(brentq(score, 0.0, 1.0, xtol=1e-12, rtol=1e-10))


def adjusted_count(
    decision: np.ndarray, *, tpr: float, fpr: float, weights: np.ndarray | None = None
) -> float:
    """ACC: ``(cc - fpr) / (tpr - fpr)`` clipped to [0, 1]; NaN where ``tpr <= fpr``."""
    d = priors.check_binary(decision).astype(np.float64)
    w = priors.check_weights(weights, len(d))
    if w.sum() <= 0:
        raise ValueError("adjusted_count needs at least one example with positive weight")
    if not tpr > fpr:
        return float("nan")
    cc = float(_wsum(w, d) / w.sum())
    return float(np.clip((cc - fpr) / (tpr - fpr), 0.0, 1.0))


def probabilistic_adjusted_count(
    probability: np.ndarray,
    *,
    mean_positive: float,
    mean_negative: float,
    weights: np.ndarray | None = None,
) -> float:
    """PACC: ``(mean p - E[p|neg]) / (E[p|pos] - E[p|neg])`` clipped to [0, 1]."""
    p = _probabilities(probability)
    w = priors.check_weights(weights, len(p))
    if w.sum() <= 0:
        raise ValueError("probabilistic_adjusted_count needs positive total weight")
    if not mean_positive > mean_negative:
        return float("nan")
    pcc = float(_wsum(w, p) / w.sum())
    return float(np.clip((pcc - mean_negative) / (mean_positive - mean_negative), 0.0, 1.0))


def reference_rates(
    labels: np.ndarray,
    probability: np.ndarray,
    *,
    threshold: float,
    weights: np.ndarray | None = None,
    log_odds: np.ndarray | None = None,
) -> dict[str, float]:
    """What ACC and PACC need from a labelled set: tpr, fpr and the class-conditional mean p.

    ``log_odds`` (the calibrated probabilities' own, where the caller has them) decide the
    rule ``probability >= threshold`` where probabilities round together near 1.
    """
    y = priors.check_binary(labels)
    p = _probabilities(probability)
    w = priors.check_weights(weights, len(y))
    pos, neg = w * (y == 1), w * (y == 0)
    if pos.sum() <= 0 or neg.sum() <= 0:
        nan = float("nan")
        return {"tpr": nan, "fpr": nan, "mean_positive": nan, "mean_negative": nan}
    flagged = (
        (p >= threshold)
        if log_odds is None
        else priors.decide_log_odds(log_odds, threshold=threshold)
    ).astype(np.float64)
    return {
        "tpr": float(_wsum(pos, flagged) / pos.sum()),
        "fpr": float(_wsum(neg, flagged) / neg.sum()),
        "mean_positive": float(_wsum(pos, p) / pos.sum()),
        "mean_negative": float(_wsum(neg, p) / neg.sum()),
    }


def expected_performance(
    probability: np.ndarray,
    decision: np.ndarray,
    *,
    costs: priors.Costs,
    weights: np.ndarray | None = None,
    per: float = priors.PER_EXAMPLES,
) -> dict[str, float]:
    """CBPE: expected precision, recall, alerts and cost per ``per`` from calibrated ``p``.

    ``probability`` must be calibrated at the batch's own prior; ``decision`` is the
    rule being judged. Expected TP = sum(d p), FP = sum(d (1-p)), FN = sum((1-d) p).
    """
    p = _probabilities(probability)
    d = priors.check_binary(decision).astype(np.float64)
    w = priors.check_weights(weights, len(p))
    if p.shape != d.shape:
        raise ValueError(f"probability and decision shapes differ: {p.shape} vs {d.shape}")
    cm = priors.Confusion(
        tn=float(_wsum(w, (1 - d) * (1 - p))),
        fp=float(_wsum(w, d * (1 - p))),
        fn=float(_wsum(w, (1 - d) * p)),
        tp=float(_wsum(w, d * p)),
    )
    return performance_of(cm, costs=costs, per=per)


def performance_of(
    cm: priors.Confusion, *, costs: priors.Costs, per: float = priors.PER_EXAMPLES
) -> dict[str, float]:
    """Precision, recall, alerts and expected cost per ``per`` of one (expected) confusion."""
    r = priors.rates(cm)
    return {
        "precision": r["precision"],
        "recall": r["recall"],
        "alerts_per_1000": priors.production_terms(cm, per=per)["alerts"],
        "expected_cost": priors.expected_cost(
            cm, cost_fp=costs.false_positive, cost_fn=costs.false_negative, per=per
        ),
    }


def measured_performance(
    labels: np.ndarray,
    decision: np.ndarray,
    *,
    costs: priors.Costs,
    weights: np.ndarray | None = None,
) -> dict[str, float]:
    """The same four numbers measured against labels (for batches that carry them)."""
    cm = priors.confusion(labels, decision, weights)
    return performance_of(cm, costs=costs)


# the estimates whose intervals assume label shift (P(x | distant label) fixed), which noisy
# distant labels break when the true prior moves (``refuse_label_shift_intervals``): EM's
# prior, CBPE's precision, recall and cost, and the ACC/PACC cross-checks of the prior (the
# coverage benchmark: in its noisy worlds ACC's held 89% and PACC's 87%, 99% and 98% in clean)
LABEL_SHIFT_INTERVALS = (
    ("estimated_prior",),
    ("estimated_prior", "cross_check", "acc"),
    ("estimated_prior", "cross_check", "pacc"),
    ("estimated_at_threshold", "precision"),
    ("estimated_at_threshold", "recall"),
    ("estimated_at_threshold", "expected_cost"),
)


def refuse_label_shift_intervals(summary: dict[str, Any], reason: str) -> None:
    """Null the intervals of ``LABEL_SHIFT_INTERVALS`` in a batch's ``summary`` (as
    ``estimate_batch`` made it), each with ``interval_refused``: ``reason``; an estimate the
    summary lacks (no cross-check without a reference) is passed over. The point estimates
    stay; alerts per 1,000 keep their interval (a count, no shift assumed)."""
    for path in LABEL_SHIFT_INTERVALS:
        entry: Any = summary
        for key in path:
            entry = entry.get(key) if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or "ci" not in entry:
            continue
        entry["ci"] = [None, None]
        entry["interval_refused"] = reason


# ---- the estimate's record (``estimate_batch``): score --summary's and metrics.json's
# label-free batches; ``dsprior.records`` reads these declarations for the docs and tests.

Interval = Annotated[list[float | None], "[low, high]; null where it could not be placed"]


class Estimate(TypedDict):
    value: Annotated[float | None, "the point estimate"]
    ci: Annotated[Interval, "its interval"]
    interval_refused: NotRequired[
        Annotated[
            str,
            "why ci is null: dev_b's gold labels show the distant labels are noisy, or every "
            "resample gave one value",
        ]
    ]


class PriorCrossCheck(TypedDict):
    available: NotRequired[Annotated[bool, "false where the bundle holds no reference"]]
    reason: NotRequired[Annotated[str, "why not available"]]
    acc: NotRequired[Annotated[Estimate, "adjusted classify-and-count"]]
    pacc: NotRequired[Annotated[Estimate, "probabilistic adjusted classify-and-count"]]
    rates_from: NotRequired[Annotated[str, "where ACC/PACC's rates come from"]]


class PriorEstimate(TypedDict):
    value: Annotated[float | None, "the batch's prior by EM"]
    ci: Annotated[Interval, "its interval"]
    interval_refused: NotRequired[
        Annotated[
            str,
            "why ci is null: dev_b's gold labels show the distant labels are noisy, or every "
            "resample gave one value",
        ]
    ]
    method: Annotated[str, "the estimator"]
    interval: Annotated[str, "how the interval was made"]
    cross_check: Annotated[PriorCrossCheck, "ACC and PACC beside it"]


class AtThreshold(TypedDict):
    threshold: Annotated[float, "the bundle's threshold"]
    interval: Annotated[str, "what the intervals hold"]
    decisions: Annotated[str, "at which prior the decisions are made"]
    precision: Annotated[Estimate, "estimated precision"]
    recall: Annotated[Estimate, "estimated recall"]
    alerts_per_1000: Annotated[Estimate, "estimated alerts per 1,000"]
    expected_cost: Annotated[Estimate, "estimated expected cost per 1,000"]


class Drift(TypedDict):
    prior_shift: Annotated[bool | None, "whether the bundle's prior lies outside the EM interval"]
    score_shift_ks: Annotated[float | None, "KS statistic against dev_b's scores"]
    p_value: Annotated[float | None, "its p-value"]
    against: Annotated[str | None, "what the scores are compared with"]


class BatchEstimate(TypedDict):
    """One batch estimated without labels (``quantify.estimate_batch``)."""

    examples: Annotated[int, "examples in the batch"]
    bundle_prior: Annotated[float, "the prior the bundle's threshold was chosen at"]
    estimated_prior: Annotated[PriorEstimate, "the batch's prior"]
    estimated_at_threshold: Annotated[AtThreshold, "the threshold's performance on it"]
    drift: Annotated[Drift, "has the batch moved from dev_b"]
    calibration: Annotated[cal.CalibrationRecord, "the recalibration used"]
    warnings: Annotated[list[str], "what makes the estimate weak"]


@dataclass(frozen=True)
class Reference:
    """The labelled rows a batch is compared with, as the bundle stores them.

    ``probability`` is prior-corrected and not yet recalibrated, so that a
    bootstrap can refit the recalibration; ``split`` says which rows are dev_b
    (rates, KS) and which the calibration was fitted on; ``fit_weight`` is the
    weight each row had in that fit (at the training prior on dev_a, at the
    production prior on dev_b). ``true_label``: the gold label (NaN where nobody
    labelled the row), or None where the reference carries no gold column.
    ``log_odds``: the same rows' prior-corrected log-odds, which every estimate uses
    (a saturated probability cannot rank the top); taken from ``probability`` where a
    reference (an older bundle's) holds probabilities only.
    """

    split: np.ndarray
    group: np.ndarray
    label: np.ndarray
    weight: np.ndarray
    fit_weight: np.ndarray
    probability: np.ndarray
    true_label: np.ndarray | None = None
    log_odds: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.log_odds is None:
            object.__setattr__(self, "log_odds", cal.log_odds(self.probability))
        n = len(self.split)
        names = ("group", "label", "weight", "fit_weight", "probability", "log_odds")
        for name in names + (("true_label",) if self.true_label is not None else ()):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"reference column {name} has {len(getattr(self, name))} rows, not {n}"
                )
        if not (np.asarray(self.split) == "dev_b").any():
            raise ValueError("the reference has no dev_b rows")


REFERENCE_SPLITS = ("dev_a", "dev_b")
PRIOR_CORRECTED = "probability_prior_corrected"  # predictions column: before recalibration
PRIOR_CORRECTED_LOG_ODDS = "logit_prior_corrected"  # its log-odds, unrounded


def reference_from_rows(
    split: np.ndarray,
    group: np.ndarray,
    label: np.ndarray,
    weight: np.ndarray,
    probability: np.ndarray,
    *,
    prior: float,
    training_prior: float | None,
    calibration: cal.Calibration,
    true_label: np.ndarray | None = None,
    log_odds: np.ndarray | None = None,
) -> Reference:
    """dev_b's rows, plus the rows the calibration was fitted on, as a :class:`Reference`.

    ``probability`` is prior-corrected, before recalibration; ``weight`` the manifest
    weight. The fit weights repeat the fit: dev_b at the production ``prior``, dev_a
    at ``training_prior`` (its rows as sampled when that is unknown). ``true_label``
    (gold, NaN where unlabelled) and ``log_odds`` (``probability``'s, unrounded) travel
    along where given.
    """
    split = np.asarray(split).astype(str)
    keep = split == "dev_b"
    if calibration.fitted_on == "dev_a":
        keep |= split == "dev_a"
    label = priors.check_binary(np.asarray(label)[keep])
    weight = np.asarray(weight, dtype=np.float64)[keep]
    split = split[keep]
    fit_weight = np.ones(len(label))
    for name, at in (("dev_b", prior), ("dev_a", training_prior)):
        rows = split == name
        if rows.any():
            fit_weight[rows] = (
                priors.weights_at_prior(label[rows], weight[rows], prior=at)
                if at is not None
                else 1.0
            )
    return Reference(
        split=split,
        group=np.asarray(group).astype(str)[keep],
        label=label,
        weight=weight,
        fit_weight=fit_weight,
        probability=_probabilities(np.asarray(probability, dtype=np.float64)[keep]),
        true_label=None if true_label is None else np.asarray(true_label, np.float64)[keep],
        log_odds=None
        if log_odds is None
        else priors.check_finite_vector(np.asarray(log_odds)[keep], "log_odds"),
    )


def prior_corrected_column(predictions: pd.DataFrame) -> str:
    """The column holding the probabilities before recalibration (``probability`` if none ran)."""
    return PRIOR_CORRECTED if PRIOR_CORRECTED in predictions.columns else "probability"


def prior_corrected_log_odds(predictions: pd.DataFrame) -> np.ndarray:
    """The log-odds before recalibration: ``PRIOR_CORRECTED_LOG_ODDS``, else ``logit_at_prior``
    where no recalibration ran, else (older tables) the log-odds of the probabilities."""
    columns = predictions.columns
    if PRIOR_CORRECTED_LOG_ODDS in columns:
        return predictions[PRIOR_CORRECTED_LOG_ODDS].to_numpy(np.float64)
    if PRIOR_CORRECTED not in columns and "logit_at_prior" in columns:  # not recalibrated
        return predictions["logit_at_prior"].to_numpy(np.float64)
    return cal.log_odds(predictions[prior_corrected_column(predictions)].to_numpy(np.float64))


def reference_from_predictions(
    predictions: pd.DataFrame,
    *,
    prior: float,
    training_prior: float | None,
    calibration: cal.Calibration,
) -> Reference:
    """:func:`reference_from_rows` on evaluate's predictions frame.

    Reads ``split``, ``group``, ``label``, ``weight`` and the probability before the
    recalibration: ``PRIOR_CORRECTED`` where the frame has it, else ``probability``
    (predictions written before evaluate recalibrated); the gold labels (``true_label``)
    where the frame has them.
    """
    return reference_from_rows(
        predictions["split"].to_numpy(),
        predictions["group"].to_numpy(),
        predictions["label"].to_numpy(),
        predictions["weight"].to_numpy(np.float64),
        predictions[prior_corrected_column(predictions)].to_numpy(np.float64),
        prior=prior,
        training_prior=training_prior,
        calibration=calibration,
        true_label=(
            predictions["true_label"].astype("Float64").to_numpy(np.float64, na_value=np.nan)
            if "true_label" in predictions.columns
            else None
        ),
        log_odds=prior_corrected_log_odds(predictions),
    )


def _interval(values: np.ndarray, level: float) -> list[float | None]:
    """The percentile interval of the defined draws; none where more than one tail's share
    (``(1 - level) / 2``) is undefined: the interval could not be placed honestly."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0 or _undefined_share(values) > (1.0 - level) / 2.0:
        return [None, None]
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return [float(low), float(high)]


# the estimates whose interval is refused where every resample gave one value (``_collapsed``):
# a prior, precision, recall or cost drawn from a finite batch is never known exactly; the
# coverage benchmark's one-value intervals of these held the truth 0 times in 21. Alerts per
# 1,000 are the batch's own count, known exactly at the bundle's prior: theirs may be one value
COLLAPSE_REFUSED = ("em", "acc", "pacc", "precision", "recall", "expected_cost")
COLLAPSE_NAMES = {"em": "the prior (EM)", "acc": "ACC's prior", "pacc": "PACC's prior"}


def collapsed_reason(value: float) -> str:
    """Why an interval of one value is not printed (``interval_refused``)."""
    return (
        f"every resample gave {value:.4g}: the probabilities left nothing to draw (the batch's "
        "alerts, or its positives by the estimate, all at 0 or 1), which no finite batch "
        "supports"
    )


def _collapsed(ci: dict[str, list[float | None]]) -> dict[str, float]:
    """The ``COLLAPSE_REFUSED`` estimates whose interval is one value, by name."""
    out: dict[str, float] = {}
    for name in COLLAPSE_REFUSED:
        low, high = ci.get(name, [None, None])
        if low is not None and low == high:
            out[name] = float(low)
    return out


def _undefined_share(values: np.ndarray) -> float:
    return float(np.mean(~np.isfinite(values))) if len(values) else 0.0


def _refused_warnings(undefined: dict[str, float], level: float) -> list[str]:
    """Why an interval at the threshold is not printed: too many resamples left it undefined."""
    return [
        f"no {int(round(level * 100))}% interval for {name}: it is undefined in "
        f"{share:.0%} of the resamples (no alerts, or no positive among the labels drawn); "
        "the batch holds too few positives or alerts to bound it"
        for name, share in undefined.items()
        if share > (1.0 - level) / 2.0
    ]


def _multiplicity(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = int(codes.max()) + 1 if len(codes) else 0
    counts = np.bincount(rng.integers(0, n, n), minlength=n) if n else np.zeros(0)
    return counts[codes].astype(np.float64)


def _codes(groups: np.ndarray | None, n: int) -> np.ndarray:
    if groups is None:
        return np.arange(n)
    _, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    return codes


def _one_pass(
    log_odds: np.ndarray,
    batch_w: np.ndarray,
    calibration: cal.Calibration,
    reference: Reference | None,
    ref_w: np.ndarray | None,
    *,
    prior: float,
    threshold: float,
    costs: priors.Costs,
    adapt: bool,
    labels_rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """Every estimate for one (re)sample: batch weights ``batch_w``, reference weights ``ref_w``.

    With ``labels_rng`` the performance at the threshold is measured on the whole batch
    (every example once) against labels drawn from this resample's calibrated probabilities
    at its estimated prior, instead of CBPE's expectation.
    """
    if reference is not None and ref_w is not None and calibration.fitted_on is not None:
        fit_rows = reference.split == calibration.fitted_on
        assert reference.log_odds is not None  # Reference.__post_init__ sets it
        try:
            calibration = cal.refit_log_odds(
                calibration,
                reference.log_odds[fit_rows],
                reference.label[fit_rows],
                reference.fit_weight[fit_rows] * ref_w[fit_rows],
            )
        except ValueError:  # a resample with one class only: keep the bundle's fit
            pass
    p = calibration.probability(log_odds)
    out: dict[str, float] = {"em": em_prior(p, prior=prior, weights=batch_w)}
    flagged = priors.decide_log_odds(calibration.map_log_odds(log_odds), threshold=threshold)
    decision = flagged
    moved, adapted = adapt_to_prior(p, from_prior=prior, to_prior=out["em"], threshold=threshold)
    if adapt:  # decisions re-made at the estimated prior
        decision = adapted
    if labels_rng is None:  # the point estimate: CBPE's expected confusion
        perf = expected_performance(moved, decision, costs=costs, weights=batch_w)
    else:  # a resample: the batch as it is, against labels drawn from this resample's
        # probabilities, so that the interval holds the batch's realised precision and recall
        # (the resample brings the prior's and the calibration's uncertainty, the draw the
        # labels'); resampled examples would count the examples' variation twice
        drawn = (labels_rng.random(len(moved)) < moved) * 1.0
        perf = expected_performance(drawn, decision, costs=costs)
    out.update(perf)
    if reference is not None:
        dev_b = reference.split == "dev_b"
        assert reference.log_odds is not None  # Reference.__post_init__ sets it
        w = reference.weight[dev_b] * (ref_w[dev_b] if ref_w is not None else 1.0)
        rates = reference_rates(
            reference.label[dev_b],
            calibration.probability(reference.log_odds[dev_b]),
            threshold=threshold,
            weights=w,
            log_odds=calibration.map_log_odds(reference.log_odds[dev_b]),
        )
        out["acc"] = adjusted_count(flagged, tpr=rates["tpr"], fpr=rates["fpr"], weights=batch_w)
        out["pacc"] = probabilistic_adjusted_count(
            p,
            mean_positive=rates["mean_positive"],
            mean_negative=rates["mean_negative"],
            weights=batch_w,
        )
    return out


def estimate_batch(
    probability: np.ndarray | None = None,
    *,
    log_odds: np.ndarray | None = None,
    prior: float,
    threshold: float,
    costs: priors.Costs,
    bootstrap: priors.Bootstrap,
    calibration: cal.Calibration = cal.IDENTITY,
    reference: Reference | None = None,
    groups: np.ndarray | None = None,
    adapt: bool = False,
    rng: np.random.Generator | None = None,
) -> dict[str, Any]:
    """The label-free summary of one batch (the ``score --summary`` keys), intervals included.

    ``log_odds``: the batch's prior-corrected log-odds at the bundle's ``prior``, before
    ``calibration`` (or ``probability``, their probabilities, for callers holding those:
    a probability that rounded to 1 has lost its rank). ``reference`` (dev_b, and the rows the
    calibration was fitted on) gives the ACC/PACC cross-check and the KS test, and
    is resampled with the batch; without it, both are reported as not available.
    ``groups``: the batch's entity groups, resampled whole (examples otherwise).
    ``adapt``: estimate the performance of decisions re-made at the estimated prior.
    ``bootstrap``: the intervals' resamples, level and seed (its ``min_positives`` is not
    used here); ``rng``, where given, draws the resamples instead of ``bootstrap.seed``.
    """
    if (probability is None) == (log_odds is None):
        raise ValueError("estimate_batch needs the batch's log_odds or its probability")
    z_raw = (
        cal.log_odds(_probabilities(np.asarray(probability)))
        if log_odds is None
        else priors.check_finite_vector(log_odds, "log_odds")
    )
    n = len(z_raw)
    if n == 0:
        raise ValueError("estimate_batch needs at least one example")
    if int(bootstrap.resamples) < 1:
        raise ValueError(f"resamples must be >= 1, got {bootstrap.resamples!r}")
    bootstrap = replace(bootstrap, level=priors.check_rate("level", bootstrap.level))
    prior = priors.check_rate("prior", prior)
    if rng is None:
        rng = np.random.default_rng(bootstrap.seed)
    kw = {"prior": prior, "threshold": threshold, "costs": costs, "adapt": adapt}
    point, ci, undefined = _bootstrapped(z_raw, calibration, reference, groups, bootstrap, rng, kw)
    collapsed = _collapsed(ci)

    def pair(name: str) -> dict[str, Any]:
        if name in collapsed:
            return {
                "value": point[name],
                "ci": [None, None],
                "interval_refused": collapsed_reason(collapsed[name]),
            }
        return {"value": point[name], "ci": ci[name]}

    cross, ks_stat, ks_p = _against_reference(z_raw, reference, pair)
    prior_entry = pair("em")
    shifted = outside(prior_entry["ci"], prior)
    return {
        "examples": n,
        "bundle_prior": prior,
        "estimated_prior": {
            **prior_entry,
            "method": EM_METHOD,
            "interval": _interval_text(bootstrap, groups, reference),
            "cross_check": cross,
        },
        "estimated_at_threshold": {
            "threshold": float(threshold),
            "interval": "holds the batch's realised value: each resample measures the whole "
            "batch against labels drawn from that resample's probabilities",
            "decisions": "re-made at the estimated prior" if adapt else "at the bundle's prior",
            **{
                name: pair(name)
                for name in ("precision", "recall", "alerts_per_1000", "expected_cost")
            },
        },
        "drift": {
            "prior_shift": shifted,
            "score_shift_ks": ks_stat,
            "p_value": ks_p,
            "against": "dev_b's probabilities (prior-corrected, before recalibration)"
            if reference
            else None,
        },
        "calibration": calibration.as_dict(),
        "warnings": _few_positives_warning(point["em"] * n)
        + _refused_warnings(  # where the batch's own value is defined
            {
                k: undefined[k]
                for k in ("precision", "recall", "expected_cost")
                if np.isfinite(point[k])
            },
            bootstrap.level,
        )
        + [
            f"no {int(round(bootstrap.level * 100))}% interval for "
            f"{COLLAPSE_NAMES.get(name, name)}: {collapsed_reason(value)}"
            for name, value in collapsed.items()
        ],
    }


def _bootstrapped(
    z_raw: np.ndarray,
    calibration: cal.Calibration,
    reference: Reference | None,
    groups: np.ndarray | None,
    bootstrap: priors.Bootstrap,
    rng: np.random.Generator,
    kw: dict[str, Any],
) -> tuple[dict[str, float], dict[str, list[float | None]], dict[str, float]]:
    """Every estimate on the batch as it is, its interval over whole-group resamples, and the
    share of resamples where it was undefined.

    Each resample draws the batch's groups, then dev_b's (the reference is resampled with
    the batch, so its own uncertainty is in the interval).
    """
    n = len(z_raw)
    point = _one_pass(z_raw, np.ones(n), calibration, reference, None, **kw)
    batch_codes = _codes(groups, n)
    ref_codes = None if reference is None else _codes(reference.group, len(reference.group))
    draws: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(int(bootstrap.resamples)):
        batch_w = _multiplicity(batch_codes, rng)
        ref_w = None if ref_codes is None else _multiplicity(ref_codes, rng)
        one = _one_pass(z_raw, batch_w, calibration, reference, ref_w, labels_rng=rng, **kw)
        for k, v in one.items():
            draws[k].append(v)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in draws.items()}
    ci = {k: _interval(v, bootstrap.level) for k, v in arrays.items()}
    return point, ci, {k: _undefined_share(v) for k, v in arrays.items()}


def outside(ci: list[float | None], value: float) -> bool | None:
    """Whether ``value`` lies outside the interval ``ci`` (its ends inside); None without one."""
    low, high = ci
    if low is None or high is None:
        return None
    return not (low <= value <= high)


def _interval_text(
    bootstrap: priors.Bootstrap, groups: np.ndarray | None, reference: Reference | None
) -> str:
    """How the intervals were made, in words."""
    return (
        f"{int(round(bootstrap.level * 100))}% percentile bootstrap, "
        f"{int(bootstrap.resamples)} resamples of the "
        f"batch's {'groups' if groups is not None else 'examples'}"
        + (" and of dev_b's groups (the recalibration refitted on each)" if reference else "")
    )


def _few_positives_warning(expected_positives: float) -> list[str]:
    """A warning when the batch holds too few positives by the estimate; else none."""
    if expected_positives >= MIN_EXPECTED_POSITIVES:
        return []
    return [
        f"the batch holds about {expected_positives:.1f} positives by the estimate (fewer "
        f"than {MIN_EXPECTED_POSITIVES:g}): too few to estimate its prior or precision "
        "well; the intervals are wide"
    ]


def _against_reference(
    z_raw: np.ndarray, reference: Reference | None, pair: Callable[[str], dict[str, Any]]
) -> tuple[dict[str, Any], float | None, float | None]:
    """The ACC/PACC cross-check and the KS drift test against dev_b, or why they are absent."""
    if reference is None:
        reason = "not available: the bundle stores no dev_b reference (built before format 2)"
        return {"available": False, "reason": reason}, None, None
    cross: dict[str, Any] = {
        "acc": pair("acc"),
        "pacc": pair("pacc"),
        "rates_from": "dev_b, as stored in the bundle",
    }
    # on the prior-corrected log-odds: an isotonic map has few distinct values, and ties
    # would blunt the test (it is unchanged by any strictly monotone map)
    assert reference.log_odds is not None  # Reference.__post_init__ sets it
    ks = ks_2samp(z_raw, reference.log_odds[reference.split == "dev_b"])
    return cross, float(ks.statistic), float(ks.pvalue)


def adapt_to_prior(
    probability: np.ndarray, *, from_prior: float, to_prior: float, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities moved to ``to_prior`` and the decisions at ``threshold`` there."""
    to_prior = min(max(float(to_prior), 1e-9), 1 - 1e-9)
    moved = priors.shift_prior(
        _probabilities(probability), from_prior=from_prior, to_prior=to_prior
    )
    return moved, (moved >= threshold).astype(np.int8)
