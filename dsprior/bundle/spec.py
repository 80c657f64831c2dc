"""bundle.json's content: building it from train's and evaluate's records, hashing it, and
checking that its prior correction reproduces evaluate's probabilities.

Pure functions on dicts and frames. What each field means is in ``dsprior.bundle``'s
docstring.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Final, NotRequired, TypedDict, cast

import numpy as np
import pandas as pd

from dsprior import calibration as cal
from dsprior import contract, modeldir, priors, runtime
from dsprior.bundle.reference import ReferenceRecord
from dsprior.calibration import CalibrationRecord
from dsprior.evaluation.record import Metrics
from dsprior.external import ExternalModelRecord

FORMAT_VERSION = 3
# 1: before recalibration and the reference (issue 16); 2: threshold as a probability only,
# before scores were log-odds (issue 23)
READABLE_VERSIONS = (1, 2, 3)
SCORES = "log-odds"  # format 3: what the model's score is, from the model onwards
SCORES_RECORD: ScoresRecord = {
    "kind": SCORES,
    "what": "the output unit's pre-activation (logit), float64; the raw score is sigmoid(logit)",
}
MODEL_FILE = modeldir.MODEL_FILE  # the model keeps its file name in the bundle
SPEC_FILE = "bundle.json"
HASH_KEY: Final = "content_hash"
THRESHOLD_APPLIES_TO = "probability"  # at the production prior, after the prior correction
PROBABILITY_TOLERANCE = 1e-12  # evaluate's probabilities vs the bundle's map of its scores
MODEL_LOAD = modeldir.MODEL_FILES["cnn"][2]


class ScoresRecord(TypedDict):
    kind: Annotated[str, "what the model's score is: log-odds (format 3)"]
    what: Annotated[str, "the score in words"]


class ModelRecord(TypedDict):
    file: Annotated[str, "the model's file in the bundle: model.keras or pooled_logistic.json"]
    sha256: Annotated[str, "the model file's sha256"]
    format: Annotated[str, "keras or json"]
    load: Annotated[str, "how to load it safely"]


class ShiftRecord(TypedDict):
    from_prior: Annotated[float, "the prior the model's beta-corrected outputs are at"]
    to_prior: Annotated[float, "the production prior they are moved to"]


class PriorCorrectionRecord(TypedDict):
    beta: Annotated[float, "train's effective negative keep rate"]
    formula: Annotated[str, "the correction in words"]
    shift: Annotated[ShiftRecord | None, "the further prior shift; null where the priors agree"]


class ThresholdRecord(TypedDict):
    value: Annotated[float, "the threshold on the probability at the production prior"]
    logit: NotRequired[
        Annotated[float | None, "the same in log-odds, as decisions compare; null: flags none"]
    ]
    applies_to: Annotated[str, "what the threshold is compared with: probability"]
    rule: Annotated[str, "the decision rule in words"]
    source: Annotated[str, "how evaluate chose it"]
    raw_score_equivalent: Annotated[float | None, "the raw model score that reaches it"]


class CostRecord(TypedDict):
    false_positive: Annotated[float, "cost of one false positive (evaluate.cost)"]
    false_negative: Annotated[float, "cost of one false negative (evaluate.cost)"]
    expected_cost: Annotated[str, "how the expected cost of a decision is computed"]


class BundleParams(TypedDict):
    train: Annotated[dict[str, Any], "the train section the model was trained with"]
    evaluate: Annotated[dict[str, Any], "the evaluate section it was evaluated with"]


class BundleTrainRecord(TypedDict):
    """What bundle.json repeats of train.json, for the record."""

    training_prior: Annotated[float | None, "train.json's training_prior"]
    production_prior_estimate: Annotated[float | None, "train.json's production_prior_estimate"]
    best_step: Annotated[int | None, "train.json's best_step"]
    select_metric: Annotated[str | None, "train.json's select_metric"]
    best_value: Annotated[float | None, "train.json's best_value"]


class BundleBody(TypedDict):
    """bundle.json less its ``content_hash``: what the hash is taken over."""

    format_version: Annotated[int, "the bundle format; this code reads READABLE_VERSIONS"]
    scores: NotRequired[Annotated[ScoresRecord, "what the model outputs (format 3)"]]
    model: Annotated[ModelRecord | ExternalModelRecord, "the model file, or the external scores"]
    dim: Annotated[int, "feature dimension"]
    dtype: Annotated[str, "the dataset's feature dtype; features are rounded to it"]
    max_abs: Annotated[float, "largest feature magnitude the dtype holds"]
    min_rows: Annotated[int, "rows an example is padded to at least"]
    prior_correction: Annotated[PriorCorrectionRecord, "from the model's output to the prior"]
    production_prior: Annotated[float, "the prior the threshold was chosen at"]
    prior_source: Annotated[str | None, "where that prior came from"]
    threshold: Annotated[ThresholdRecord, "the decision threshold"]
    cost: Annotated[CostRecord, "the costs the threshold minimises"]
    calibration: NotRequired[Annotated[CalibrationRecord, "the recalibration (format 2)"]]
    reference: NotRequired[Annotated[ReferenceRecord | None, "the reference file (format 2)"]]
    params: NotRequired[Annotated[BundleParams, "the params sections behind the bundle"]]
    train: Annotated[BundleTrainRecord, "what training recorded"]


class BundleSpec(BundleBody):
    """bundle.json: everything scoring needs besides the model and the reference file.

    Keys marked NotRequired are absent from bundles of an earlier ``format_version``.
    """

    content_hash: Annotated[str, "sha256 of the rest of the spec (``content_hash``)"]


def model_record(train_record: Mapping[str, Any], model_sha256: str | None) -> ModelRecord:
    """The model file's name, sha256, format and how to load it, by ``train.model``."""
    if model_sha256 is None:
        raise ValueError("a bundle of a trained model needs the model file's sha256")
    file, form, load = modeldir.MODEL_FILES[modeldir.model_kind(train_record)]
    return {"file": file, "sha256": model_sha256, "format": form, "load": load}


def model_file_record(spec: BundleSpec) -> ModelRecord | None:
    """The model file's record; None for a bundle of external scores, which holds none."""
    model = spec["model"]
    return cast(ModelRecord, model) if "file" in model else None


def content_hash(spec: Mapping[str, Any]) -> str:
    """sha256 of the spec without its hash; the spec holds the model file's sha256."""
    body = {k: v for k, v in spec.items() if k != HASH_KEY}
    text = json.dumps(runtime.finite_or_none(body), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def check_spec_inputs(
    *,
    train_record: modeldir.TrainRecord,
    metrics: Metrics,
    dataset_dim: int,
    dataset_dtype: str,
) -> None:
    """ValueError when train.json, metrics.json and the dataset disagree or lack a field."""
    for key in ("dim", "beta", "params"):
        if key not in train_record:
            raise ValueError(f"train.json lacks {key!r}; it needs dim, beta and params")
    for key in ("threshold", "prior", "beta", "cost"):
        if metrics.get(key) is None:
            raise ValueError(f"metrics.json has no {key!r}; rerun the evaluate stage")
    if int(train_record["dim"]) != int(dataset_dim):
        raise ValueError(
            f"train.json has dim {train_record['dim']} but the dataset has dim {dataset_dim}"
        )
    beta = float(train_record["beta"])
    if not np.isclose(beta, float(metrics["beta"]), rtol=1e-12, atol=0):
        raise ValueError(
            f"train.json has beta {beta} but metrics.json {metrics['beta']}: evaluate is stale"
        )
    if dataset_dtype not in contract.DTYPES:
        raise ValueError(
            f"dataset dtype must be one of {sorted(contract.DTYPES)}, got {dataset_dtype!r}"
        )


def prior_correction_record(
    train_record: modeldir.TrainRecord, metrics: Metrics
) -> PriorCorrectionRecord:
    """train's beta and the prior shift evaluate makes (None where the priors agree)."""
    model_prior = metrics.get("prior_of_model", train_record.get("production_prior_estimate"))
    shift = priors.prior_shift(model_prior=model_prior, prior=float(metrics["prior"]))
    return {
        "beta": float(train_record["beta"]),
        "formula": "logit_at_prior = logit + log(beta) (+ log(odds(to_prior)/odds(from_prior)) "
        "for a shift); the same as p = beta*s / (beta*s - s + 1), s = sigmoid(logit)",
        "shift": None if shift is None else {"from_prior": shift[0], "to_prior": shift[1]},
    }


def threshold_record(metrics: Metrics) -> ThresholdRecord:
    """The threshold evaluate chose, as a probability for people and as the log-odds decisions
    compare (``logit``; null where it flags nothing), and the rule that applies it."""
    value = float(metrics["threshold"])
    return {
        "value": value,
        "logit": priors.threshold_log_odds(value),
        "applies_to": THRESHOLD_APPLIES_TO,
        "rule": "decision = 1 if logit_at_prior >= logit else 0 (probability >= value, "
        "compared in log-odds; logit null: flags nothing)",
        "source": metrics.get("threshold_source", "evaluate"),
        "raw_score_equivalent": metrics.get("threshold_score"),
    }


def cost_record(cost: Mapping[str, Any]) -> CostRecord:
    return {
        "false_positive": float(cost["false_positive"]),
        "false_negative": float(cost["false_negative"]),
        "expected_cost": "per example: (1-p)*false_positive if decided positive, "
        "else p*false_negative",
    }


def build_spec(
    *,
    train_record: modeldir.TrainRecord,
    metrics: Metrics,
    evaluate_params: dict[str, Any],
    dataset_dim: int,
    dataset_dtype: str,
    model_sha256: str | None,
    reference: ReferenceRecord | None = None,
    model: ExternalModelRecord | None = None,
) -> BundleSpec:
    """bundle.json's content (with its hash) from train.json, metrics.json and params.

    ``reference`` describes ``reference.parquet`` (file, sha256, counts) or is None.
    ``model`` replaces the Keras model's record for a bundle of external scores
    (``dsprior.external.bundle_model_record``: no model file).

    ValueError when the inputs disagree (train's dim vs the dataset's, train's
    beta vs the one evaluate used) or lack what scoring needs.
    """
    check_spec_inputs(
        train_record=train_record,
        metrics=metrics,
        dataset_dim=dataset_dim,
        dataset_dtype=dataset_dtype,
    )
    params = train_record["params"]
    body: BundleBody = {
        "format_version": FORMAT_VERSION,
        "scores": SCORES_RECORD,
        "model": model if model is not None else model_record(train_record, model_sha256),
        "dim": int(dataset_dim),
        # Features are rounded to the dataset's dtype before scoring, as ingest stored them.
        "dtype": dataset_dtype,
        "max_abs": contract.max_abs_for(dataset_dtype),
        "min_rows": int(train_record.get("min_rows", max(params.get("filter_sizes", [1])))),
        "prior_correction": prior_correction_record(train_record, metrics),
        "production_prior": float(metrics["prior"]),
        "prior_source": metrics.get("prior_source"),
        "threshold": threshold_record(metrics),
        "cost": cost_record(metrics["cost"]),
        "calibration": (metrics.get("calibration") or {}).get("chosen") or cal.IDENTITY.as_dict(),
        "reference": reference,
        "params": {"train": params, "evaluate": evaluate_params},
        "train": {
            "training_prior": train_record.get("training_prior"),
            "production_prior_estimate": train_record.get("production_prior_estimate"),
            "best_step": train_record.get("best_step"),
            "select_metric": train_record.get("select_metric"),
            "best_value": train_record.get("best_value"),
        },
    }
    clean: BundleBody = runtime.finite_or_none(body)  # NaN as null, numpy as Python
    return {**clean, HASH_KEY: content_hash(clean)}


def spec_shift(spec: BundleSpec) -> tuple[float, float] | None:
    shift = spec["prior_correction"]["shift"]
    return None if shift is None else (float(shift["from_prior"]), float(shift["to_prior"]))


def spec_calibration(spec: BundleSpec) -> cal.Calibration:
    """The recalibration after the prior correction; the identity for a format 1 bundle."""
    record = spec.get("calibration")
    if record is None:
        return cal.IDENTITY
    try:
        return cal.Calibration.from_dict(record)
    except ValueError as exc:  # e.g. knots that are not monotone
        raise ValueError(f"{SPEC_FILE}: calibration: {exc}") from exc


def format_notes(spec: BundleSpec) -> list[str]:
    """What a bundle of an earlier format lacks, one sentence each (empty for the current one)."""
    version = spec.get("format_version", FORMAT_VERSION)
    notes = []
    if version < 2:
        notes.append(
            f"format {version} bundle: no recalibration and no reference (the summary's "
            "cross-check and KS test are not available)"
        )
    if version < 3:
        notes.append(
            f"format {version} bundle: threshold stored as a probability only; rebuild with "
            "`dvc repro bundle` for log-odds thresholds"
        )
    return notes


def spec_threshold_logit(spec: BundleSpec) -> float:
    """The log-odds decisions compare: ``threshold.logit`` (format 3), else the stored
    probability's log-odds (``+inf`` where it flags nothing)."""
    record = spec["threshold"]
    logit = record.get("logit")
    if logit is not None:
        return float(logit)
    return priors.threshold_log_odds(record["value"])


def check_against_predictions(spec: BundleSpec, predictions: pd.DataFrame) -> dict[str, Any]:
    """Map evaluate's logits through the bundle; they must give evaluate's probabilities.

    Returns a summary; ValueError when any probability differs by more than
    ``PROBABILITY_TOLERANCE`` or any decision at the threshold (compared in log-odds) differs.
    """
    for column in ("logit", "logit_at_prior", "probability"):
        if column not in predictions.columns:
            raise ValueError(f"predictions lack column {column!r}; rerun the evaluate stage")
    if predictions.empty:
        raise ValueError("predictions are empty: nothing to check the prior correction against")
    logits = predictions["logit"].to_numpy(np.float64)
    expected = predictions["probability"].to_numpy(np.float64)
    calibration = spec_calibration(spec)
    corrected = priors.log_odds_at_prior(
        logits, beta=spec["prior_correction"]["beta"], shift=spec_shift(spec)
    )
    got = calibration.probability(corrected)
    diff = float(np.max(np.abs(got - expected)))
    threshold = spec_threshold_logit(spec)
    decided = calibration.map_log_odds(corrected) >= threshold
    disagree = int(np.sum(decided != (predictions["logit_at_prior"].to_numpy() >= threshold)))
    if diff > PROBABILITY_TOLERANCE or disagree:
        raise ValueError(
            f"the bundle's prior correction does not reproduce evaluate's probabilities "
            f"(max difference {diff:.3g}, {disagree} decisions differ); is evaluate stale?"
        )
    return {"examples": int(len(logits)), "max_abs_probability_difference": diff}
