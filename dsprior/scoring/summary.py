"""``score --summary``: a scored batch estimated without labels (``dsprior.quantify``).

Its prior by EM with an interval and an ACC/PACC cross-check against dev_b's rates
from the bundle, the threshold's expected precision, recall, alerts per 1,000 and
cost at that prior, drift (the interval excludes the bundle's prior; a KS test against
dev_b's probabilities), what re-deciding at the estimated prior would change, and,
where the input has labels, the measured numbers beside the estimates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from dsprior import noise_shift, priors, quantify, runtime
from dsprior.bundle import HASH_KEY, Bundle
from dsprior.rawio import Example
from dsprior.scoring.stream import ScoreSummary

# What the summary repeats of the estimate at the estimated prior, after --adapt-prior.
ADAPTED_ESTIMATES = ("precision", "recall", "alerts_per_1000", "expected_cost")


@dataclass
class BatchRecord:
    """What the label-free summary needs of each scored example, in output order."""

    example_ids: list[str] = field(default_factory=list)
    groups: list[str | None] = field(default_factory=list)
    labels: list[int | None] = field(default_factory=list)

    def add(self, example: Example) -> None:
        self.example_ids.append(example.example_id)
        self.groups.append(example.group)
        self.labels.append(example.label)


def scores_in_output(
    table: pa.Table, record: BatchRecord, *, output_path: str | Path
) -> np.ndarray:
    """The model's log-odds (``logit``) of the output as written; RuntimeError unless it holds
    ``record``'s examples in order."""
    ids = table.column("example_id").to_pylist()
    if ids != record.example_ids:
        raise RuntimeError(
            f"the output {output_path} does not hold the examples just scored, in order "
            "(please report this bug)"
        )
    return table.column("logit").to_numpy().astype(np.float64)


def bootstrap_settings(
    bundle: Bundle,
    *,
    resamples: int | None = None,
    level: float | None = None,
    seed: int | None = None,
) -> priors.Bootstrap:
    """Resamples, level and seed: those given (``score --resamples``, ``--seed``), else the
    bundle's ``evaluate.bootstrap``, else 1000, 0.95 and 0."""
    boot = (bundle.spec.get("params", {}).get("evaluate") or {}).get("bootstrap") or {}
    return priors.Bootstrap(
        resamples=int(resamples if resamples is not None else boot.get("resamples", 1000)),
        level=float(level if level is not None else boot.get("level", 0.95)),
        seed=int(seed if seed is not None else boot.get("seed", 0)),
    )


def empty_summary(prior: float) -> dict[str, Any]:
    return {
        "examples": 0,
        "bundle_prior": prior,
        "estimated_prior": None,
        "estimated_at_threshold": None,
        "drift": None,
        "warnings": ["the batch is empty: nothing to estimate"],
    }


def adapt_prior_record(
    corrected: np.ndarray,
    decision: np.ndarray,
    adapted: np.ndarray,
    *,
    applied: bool,
    to_prior: float,
    estimate_kw: dict[str, Any],
) -> dict[str, Any]:
    """What re-deciding at the estimated prior changes, and the estimates it would give."""
    after = quantify.estimate_batch(log_odds=corrected, adapt=True, **estimate_kw)[
        "estimated_at_threshold"
    ]
    return {
        "applied": bool(applied),
        "to_prior": to_prior,
        "alerts_per_1000_before": float(1000 * decision.mean()),
        "alerts_per_1000_after": float(1000 * adapted.mean()),
        "decisions_changed": int((decision != adapted).sum()),
        "estimated_at_threshold_after": {k: v for k, v in after.items() if k in ADAPTED_ESTIMATES},
    }


def measured_record(
    labels: list[int | None],
    decision: np.ndarray,
    adapted: np.ndarray,
    *,
    adapt_prior: bool,
    costs: priors.Costs,
) -> dict[str, Any] | None:
    """The batch's own labels measured beside the estimates, on the labelled examples;
    None where no example has a label."""
    labelled = np.array([label is not None for label in labels])
    if not labelled.any():
        return None
    y = np.array([label for label in labels if label is not None], dtype=np.int8)
    measured: dict[str, Any] = {
        "labelled_examples": int(labelled.sum()),
        "prior": float(y.mean()),
        **quantify.measured_performance(y, decision[labelled], costs=costs),
        "labels": "the input's label column, each example weighing 1 (a production-ratio batch)",
    }
    if adapt_prior:
        measured["after_adapt_prior"] = quantify.measured_performance(
            y, adapted[labelled], costs=costs
        )
    return measured


def true_label_record(
    bundle: Bundle,
    reference: quantify.Reference | None,
    decision: np.ndarray,
    distant_estimate: dict[str, Any],
    *,
    groups: np.ndarray | None,
    bootstrap: priors.Bootstrap,
) -> dict[str, Any]:
    """The true-label keys (``dsprior.noise_shift.true_shift_record``) from the bundle's
    reference: its gold labels where it holds them, else the noise rates stated in its
    ``evaluate.stated_label_noise`` (older bundles: none)."""
    evaluate_params = bundle.spec.get("params", {}).get("evaluate") or {}
    stated = noise_shift.check_stated_noise(evaluate_params.get("stated_label_noise"))
    reason: str | None = "the bundle holds no dev_b reference (format 1)"
    rows = None
    if reference is not None:
        # the bundle's rule on dev_b's prior-corrected probabilities, compared in log-odds
        assert reference.log_odds is not None  # Reference.__post_init__ sets it
        z = bundle.calibration.map_log_odds(reference.log_odds)
        rows = noise_shift.reference_rows(reference, (z >= bundle.threshold_logit).astype(np.int8))
        reason = (
            None
            if reference.true_label is not None
            else "the bundle's reference.parquet has no true_label column (built from data "
            "without gold labels, or before the bundle held them)"
        )
    return noise_shift.true_shift_record(
        decision,
        rows,
        distant_estimate=distant_estimate,
        stated=stated,
        threshold=bundle.threshold,
        costs=bundle.costs,
        bootstrap=bootstrap,
        groups=groups,
        missing_reason=reason,
    )


def batch_summary(
    bundle: Bundle,
    scores: np.ndarray,
    record: BatchRecord,
    *,
    bootstrap: priors.Bootstrap,
    adapt_prior: bool = False,
) -> tuple[dict[str, Any], np.ndarray | None]:
    """The ``--summary`` content for one scored batch (``dsprior.quantify.estimate_batch``),
    and the calibrated probabilities moved to the estimated prior (None when empty).

    Intervals resample the batch's groups when every example has one (its examples
    otherwise) and dev_b's groups from the bundle. ``bootstrap``: the intervals' resamples,
    level and seed (``bootstrap_settings``: the bundle's, unless given). Labels, where every
    example has one, are measured beside the estimates (on the labelled examples where only
    some do).
    """
    costs = bundle.costs
    threshold, prior = bundle.threshold, bundle.prior
    n = len(scores)
    if n == 0:
        return empty_summary(prior), None
    groups = None if any(g is None for g in record.groups) else np.asarray(record.groups)
    corrected = bundle.corrected_log_odds(scores)  # before the recalibration
    kw: dict[str, Any] = {
        "prior": prior,
        "threshold": threshold,
        "costs": costs,
        "bootstrap": bootstrap,
        "calibration": bundle.calibration,
        "reference": bundle.reference(),
        "groups": groups,
    }
    summary = quantify.estimate_batch(log_odds=corrected, **kw)
    probability = bundle.probability(scores)
    decision = bundle.decide(scores)
    estimate = summary["estimated_prior"]["value"]
    moved, adapted = quantify.adapt_to_prior(
        probability, from_prior=prior, to_prior=estimate, threshold=threshold
    )
    summary["adapt_prior"] = adapt_prior_record(
        corrected, decision, adapted, applied=adapt_prior, to_prior=estimate, estimate_kw=kw
    )
    # the true relation's prior moving, distant labels following (issue #23)
    summary.update(
        true_label_record(
            bundle,
            kw["reference"],
            decision,
            summary,
            groups=groups,
            bootstrap=bootstrap,
        )  # fmt: skip
    )
    noise = summary.get("label_noise")
    if noise is not None and noise.get("stated") is None:  # rates from dev_b's gold labels
        reason = noise_shift.noisy_labels_reason(
            noise["missing_label_rate"]["ci"], noise["false_label_rate"]["ci"]
        )
        if reason is not None:
            quantify.refuse_label_shift_intervals(summary, reason)
    measured = measured_record(
        record.labels, decision, adapted, adapt_prior=adapt_prior, costs=costs
    )
    if measured is not None:
        summary["measured"] = measured
    summary["examples"] = n
    summary["groups"] = "resampled whole" if groups is not None else "absent: examples resampled"
    return runtime.finite_or_none(summary), moved


def run_record(bundle: Bundle, scoring: ScoreSummary) -> dict[str, Any]:
    """The summary's ``scoring`` (what the run read, scored and rejected) and ``bundle`` keys."""
    return {
        "scoring": scoring.as_dict(),
        "bundle": {
            "path": str(bundle.path),
            "content_hash": bundle.spec.get(HASH_KEY),
            "format_version": bundle.spec.get("format_version"),
        },
    }
