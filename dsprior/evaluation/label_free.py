"""What the label-free estimate would have said: dev_b, test and test resampled to other priors.

Each batch is estimated as ``score --summary`` does (labels hidden, dev_b as the
reference, resampled by group), and the measured numbers (manifest weights, so at the
batch's own label rate) stand beside the estimates.

Where dev_b carries gold labels, ``true_shift_metrics`` adds the true-label estimate
(``dsprior.noise_shift``) on dev_b, test and test with *true* positives or negatives
subsampled (the true prior moving, distant labels following), beside what gold and
distant labels measure there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from dsprior import calibration as cal
from dsprior import noise_shift, priors, quantify, runtime
from dsprior.evaluation.gold import gold_labels
from dsprior.evaluation.measures import decisions_at

LABEL_FREE_SPLITS = ("dev_b", "test")
LABEL_FREE_RATIOS = (30, 100, 250)  # test resampled to 1:N (N negatives a positive), labels hidden
# From this many examples times resamples (each batch's examples plus the reference's, summed
# over the batches) the batches are estimated in a process per core. Measured on 2 cores, in
# evaluate without its scoring: the reference scale (3.3e8) took 21.5 s against 31.2 s in one
# process, the default run (1.3e8) 17 s against 23 s; starting a worker costs about a second,
# so the tests' small batches stay in the evaluating process.
PROCESSES_FROM = 50_000_000


def _resampled_to_prior(
    frame: pd.DataFrame, target: float, rng: np.random.Generator, *, column: str = "label"
) -> pd.DataFrame | None:
    """``frame`` with positives or negatives (of ``column``) subsampled so that its positive
    fraction is ``target``."""
    y = frame[column].to_numpy()
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) == 0 or len(neg) == 0:
        return None
    if target < len(pos) / len(y):
        k = int(round(target * len(neg) / (1 - target)))
        if k < 1:
            return None
        pos = np.sort(rng.choice(pos, size=k, replace=False))
    else:
        k = int(round(len(pos) * (1 - target) / target))
        if k < 1:
            return None
        neg = np.sort(rng.choice(neg, size=k, replace=False))
    return frame.iloc[np.sort(np.concatenate([pos, neg]))]


def label_free_batches(predictions: pd.DataFrame, *, seed: int) -> dict[str, pd.DataFrame]:
    """dev_b, test, and test resampled to each of ``LABEL_FREE_RATIOS`` (where it can be)."""
    rng = np.random.default_rng(seed)
    batches: dict[str, pd.DataFrame] = {
        s: predictions[predictions["split"] == s] for s in LABEL_FREE_SPLITS
    }
    for ratio in LABEL_FREE_RATIOS:
        resampled = _resampled_to_prior(batches["test"], 1.0 / (1.0 + ratio), rng)
        if resampled is not None:
            batches[f"test_at_1_{ratio}"] = resampled
    return batches


def measured_batch(frame: pd.DataFrame, *, threshold: float, costs: priors.Costs) -> dict[str, Any]:
    """What the labels say of one batch: its prior and the threshold's performance on it."""
    y, w = frame["label"].to_numpy(), frame["weight"].to_numpy(np.float64)
    return {
        "prior": priors.estimate_prior(y, w),
        **quantify.measured_performance(y, decisions_at(frame, threshold), weights=w, costs=costs),
    }


def label_free_metrics(
    predictions: pd.DataFrame,
    *,
    prior: float,
    threshold: float,
    costs: priors.Costs,
    calibration: cal.Calibration,
    training_prior: float | None,
    bootstrap: priors.Bootstrap,
    workers: int | None = None,
) -> dict[str, Any]:
    """What the label-free estimate would have said on dev_b, test and test at other priors.

    Each batch is estimated as ``score --summary`` does (labels hidden, dev_b as the
    reference, resampled by group), and the measured numbers (manifest weights, so
    at the batch's own label rate) stand beside the estimates. The batches are estimated
    side by side in ``workers`` processes (``None``: every core, where the resamples come to
    ``PROCESSES_FROM`` or more); the summaries are the same at any ``workers``.
    """
    # the log-odds before recalibration travel with each batch's rows
    predictions = predictions.assign(_uncal=quantify.prior_corrected_log_odds(predictions))
    reference = quantify.reference_from_predictions(
        predictions, prior=prior, training_prior=training_prior, calibration=calibration
    )
    batches = label_free_batches(predictions, seed=bootstrap.seed)
    jobs = [
        {
            "log_odds": frame["_uncal"].to_numpy(np.float64),
            "calibration": calibration,
            "reference": reference,
            "groups": frame["group"].to_numpy(),
            "bootstrap": bootstrap,
            "prior": prior,
            "threshold": threshold,
            "costs": costs,
        }
        for frame in batches.values()
    ]
    if workers is None:  # every core, where the work outweighs starting the workers
        work = sum(len(job["log_odds"]) + len(reference.split) for job in jobs)
        large = work * int(bootstrap.resamples) >= PROCESSES_FROM
        workers = runtime.machine_cores() if large else 1
    # each batch draws its resamples from its own generator (bootstrap.seed): the same
    # bytes in any process
    summaries = runtime.map_in_processes(_estimate_batch, jobs, workers=workers)
    out: dict[str, Any] = {}
    for (name, frame), summary in zip(batches.items(), summaries, strict=True):
        summary["measured"] = measured_batch(frame, threshold=threshold, costs=costs)
        summary["in_sample"] = name == "dev_b"  # dev_b is also the reference (and maybe the fit)
        out[name] = summary
    return out


def _estimate_batch(job: dict[str, Any]) -> dict[str, Any]:
    """``quantify.estimate_batch`` on one batch's keywords (a worker's task), in one BLAS
    thread: with a process per core, each process's BLAS threads would contend for the same
    cores (measured at the reference scale: 49 s against 31 s in one process), and the
    vectors are too short for BLAS threads to pay even alone (31.2 s against 31.8 s). The
    summaries are the same bytes as with BLAS's own threads (checked on that run)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return quantify.estimate_batch(**job)


# Each label-free interval and the measured value it claims to hold: (name, path to the
# estimate in a batch's summary, key in the batch's ``measured``).
INTERVAL_CHECKS = (
    ("prior, EM", ("estimated_prior",), "prior"),
    ("prior, ACC", ("estimated_prior", "cross_check", "acc"), "prior"),
    ("prior, PACC", ("estimated_prior", "cross_check", "pacc"), "prior"),
    ("precision at the threshold", ("estimated_at_threshold", "precision"), "precision"),
    ("recall at the threshold", ("estimated_at_threshold", "recall"), "recall"),
    ("expected cost per 1,000", ("estimated_at_threshold", "expected_cost"), "expected_cost"),
)
# The same for the true-label estimate (``label_free_true_shift``'s batches).
TRUE_SHIFT_CHECKS = (
    ("true prior", ("estimated_prior_true",), "prior_true"),
    ("precision against gold", ("estimated_at_threshold_true", "precision"), "precision_true"),
    (
        "precision against distant labels, true shift",
        ("estimated_at_threshold_true", "distant_labels", "precision"),
        "precision_distant",
    ),
    ("recall against gold", ("estimated_at_threshold_true", "recall"), "recall_true"),
)


def _entry(summary: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    for key in path:
        if not isinstance(summary, dict) or key not in summary:
            return None
        summary = summary[key]
    return summary if isinstance(summary, dict) else None


def interval_checks(
    label_free: dict[str, dict[str, Any]],
    *,
    level: float,
    true_shift: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """How often each label-free interval held what the labels measured, on this run's batches.

    ``true_shift``: the true-label estimate's batches, checked against gold and distant
    labels where dev_b has gold. Only out-of-sample batches count (dev_b is its own
    reference). A batch whose interval
    was not printed (no interval, or no measured value) is listed as ``not_checked``.
    The batches resampled from test share its examples, so the checks are not independent:
    this is a run's own sanity line, the coverage benchmark is the measurement.
    """
    out: dict[str, Any] = {}
    checks = [(label_free, check) for check in INTERVAL_CHECKS]
    checks += [(true_shift, check) for check in TRUE_SHIFT_CHECKS if true_shift]
    for batches, (name, path, measured_key) in checks:
        held, missed, not_checked = [], [], []
        for batch, summary in batches.items():
            if summary.get("in_sample"):
                continue
            entry = _entry(summary, path)
            truth = (summary.get("measured") or {}).get(measured_key)
            ci = None if entry is None else entry.get("ci")
            if truth is None or not ci or ci[0] is None or ci[1] is None:
                not_checked.append(batch)
            elif ci[0] <= truth <= ci[1]:
                held.append(batch)
            else:
                missed.append(batch)
        out[name] = {
            "held": len(held),
            "checks": len(held) + len(missed),
            "missed": missed,
            "not_checked": not_checked,
        }
    return {
        "level": float(level),
        "batches": "out of sample only (test, and test resampled to other priors: not independent)",
        "intervals": out,
    }


def _measured_against_both(frame: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """Prior, precision and recall against gold (gold-labelled rows) and distant labels."""
    gold = gold_labels(frame)
    labelled = ~np.isnan(gold)
    w = frame["weight"].to_numpy(np.float64)
    decision = decisions_at(frame, threshold)
    out: dict[str, Any] = {"gold_examples": int(labelled.sum())}
    for name, y, rows in (
        ("true", gold, labelled),
        ("distant", frame["label"].to_numpy(np.float64), np.ones(len(frame), bool)),
    ):
        cm = priors.confusion(y[rows].astype(np.int8), decision[rows], w[rows])
        rates = priors.rates(cm)
        out[f"prior_{name}"] = priors.estimate_prior(y[rows].astype(np.int8), w[rows])
        out[f"precision_{name}"] = rates["precision"]
        out[f"recall_{name}"] = rates["recall"]
    return out


def true_shift_batches(predictions: pd.DataFrame, *, seed: int) -> dict[str, pd.DataFrame]:
    """dev_b, test, and test's gold-labelled rows with *true* positives or negatives
    subsampled to each of ``LABEL_FREE_RATIOS`` (where it can be)."""
    rng = np.random.default_rng([seed, 23])
    batches = {s: predictions[predictions["split"] == s] for s in LABEL_FREE_SPLITS}
    test = batches["test"].assign(_gold=gold_labels(batches["test"]))
    test = test[~np.isnan(test["_gold"].to_numpy())]
    for ratio in LABEL_FREE_RATIOS:
        resampled = _resampled_to_prior(test, 1.0 / (1.0 + ratio), rng, column="_gold")
        if resampled is not None:
            batches[f"test_true_at_1_{ratio}"] = resampled.drop(columns="_gold")
    return batches


def true_shift_metrics(
    predictions: pd.DataFrame,
    *,
    threshold: float,
    costs: priors.Costs,
    bootstrap: priors.Bootstrap,
) -> dict[str, Any] | None:
    """The true-label estimate (``dsprior.noise_shift``) on each batch, beside what gold and
    distant labels measure; None where dev_b has no gold labels of both classes.

    The noise rates and the decision's rates against the truth come from dev_b's
    gold-labelled rows (manifest weights); ``test_true_at_1_N`` is test's gold-labelled
    rows with true positives or negatives subsampled to 1:N, so distant labels follow.
    """
    dev_b = predictions[predictions["split"] == "dev_b"]
    reference = noise_shift.NoiseReference(
        decision=decisions_at(dev_b, threshold),
        distant=dev_b["label"].to_numpy(),
        gold=gold_labels(dev_b),
        weight=dev_b["weight"].to_numpy(np.float64),
        group=dev_b["group"].to_numpy(),
    )
    if not reference.has_gold():
        return None
    out: dict[str, Any] = {}
    for name, frame in true_shift_batches(predictions, seed=bootstrap.seed).items():
        if frame.empty:
            continue
        entry = noise_shift.estimate_true_shift(
            decisions_at(frame, threshold),
            reference,
            threshold=threshold,
            costs=costs,
            bootstrap=bootstrap,
            groups=frame["group"].to_numpy(),
        )
        entry["examples"] = int(len(frame))
        entry["measured"] = _measured_against_both(frame, threshold)
        entry["in_sample"] = name == "dev_b"  # dev_b is also where the rates come from
        out[name] = entry
    return out
