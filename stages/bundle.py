"""bundle stage: one versioned folder holding everything needed to score new examples.

``bundle/`` (``paths.bundle``) is a single DVC output, so a teammate can
``dvc pull bundle`` alone and run ``python -m stages.score`` without the
dataset, the manifest or any other stage. It holds:

- ``model.keras``: the trained model, copied byte for byte from train; Keras 3
  format with registered layers only, loaded with ``safe_mode=True`` (no
  Lambda layers, no pickles);
- ``bundle.json``: the feature dimension and dtype the model was trained on,
  the prior correction evaluate applies (``beta`` from train, plus the prior
  shift evaluate makes when its production prior differs from the one the
  training weights restore), the production prior, the threshold chosen on
  ``dev_b`` and what it applies to (the probability at the prior), the cost
  settings, the train and evaluate params, and a content hash over all of it
  and the model's bytes;
- format 2 adds ``calibration`` (the recalibration evaluate chose, applied after
  the prior correction: ``stages.calibration``) and ``reference``, naming
  ``reference.parquet``: dev_b's rows (group codes, labels, weights and
  prior-corrected probabilities; dev_a's too when the recalibration was fitted
  there), which ``score --summary`` needs for the ACC/PACC cross-check, the KS
  test and intervals that include dev_b's own uncertainty. Format 1 bundles still
  load: no recalibration, and the summary reports the cross-check and KS test as
  not available.

The stage checks what it writes: mapping evaluate's own raw scores
(``reports/predictions.parquet``) through the bundle's prior correction must
give evaluate's probabilities, and the model must load in safe mode with the
recorded dimension; otherwise it fails.

This module is also the bundle's reader (``load_bundle``), used by ``stages.score``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from dsprior import calibration as cal
from dsprior import common, contract, priors, quantify
from dsprior.rawio import max_abs_for

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: before recalibration and the reference (issue 16)
MODEL_FILE = "model.keras"
REFERENCE_FILE = "reference.parquet"
REFERENCE_COLUMNS = ("split", "group", "label", "weight", "fit_weight", "probability")
SPEC_FILE = "bundle.json"
HASH_KEY = "content_hash"
THRESHOLD_APPLIES_TO = "probability"  # at the production prior, after the prior correction
PROBABILITY_TOLERANCE = 1e-12  # evaluate's probabilities vs the bundle's map of its scores


# ----------------------------------------------------------------------------- prior correction


# ----------------------------------------------------------------------------- the spec


def file_sha256(path: str | Path, *, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def content_hash(spec: dict[str, Any]) -> str:
    """sha256 of the spec without its hash; the spec holds the model file's sha256."""
    body = {k: v for k, v in spec.items() if k != HASH_KEY}
    text = json.dumps(common.finite_or_none(body), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def build_spec(
    *,
    train_record: dict[str, Any],
    metrics: dict[str, Any],
    evaluate_params: dict[str, Any],
    dataset_dim: int,
    dataset_dtype: str,
    model_sha256: str,
    reference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """bundle.json's content (with its hash) from train.json, metrics.json and params.

    ``reference`` describes ``reference.parquet`` (file, sha256, counts) or is None.

    ValueError when the inputs disagree (train's dim vs the dataset's, train's
    beta vs the one evaluate used) or lack what scoring needs.
    """
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
    prior = float(metrics["prior"])
    model_prior = metrics.get("prior_of_model", train_record.get("production_prior_estimate"))
    shift = priors.prior_shift(model_prior=model_prior, prior=prior)
    params = train_record["params"]
    cost = metrics["cost"]
    spec: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model": {
            "file": MODEL_FILE,
            "sha256": model_sha256,
            "format": "keras",
            "load": "keras.saving.load_model(path, safe_mode=True) after importing stages.cnn",
        },
        "dim": int(dataset_dim),
        # Features are rounded to the dataset's dtype before scoring, as ingest stored them.
        "dtype": dataset_dtype,
        "max_abs": max_abs_for(dataset_dtype),
        "min_rows": int(train_record.get("min_rows", max(params.get("filter_sizes", [1])))),
        "prior_correction": {
            "beta": beta,
            "formula": "p = beta*s / (beta*s - s + 1), s = raw score",
            "shift": None if shift is None else {"from_prior": shift[0], "to_prior": shift[1]},
        },
        "production_prior": prior,
        "prior_source": metrics.get("prior_source"),
        "threshold": {
            "value": float(metrics["threshold"]),
            "applies_to": THRESHOLD_APPLIES_TO,
            "rule": "decision = 1 if probability >= value else 0",
            "source": metrics.get("threshold_source", "evaluate"),
            "raw_score_equivalent": metrics.get("threshold_score"),
        },
        "cost": {
            "false_positive": float(cost["false_positive"]),
            "false_negative": float(cost["false_negative"]),
            "expected_cost": "per example: (1-p)*false_positive if decided positive, "
            "else p*false_negative",
        },
        "calibration": (metrics.get("calibration") or {}).get("chosen") or cal.IDENTITY.as_dict(),
        "reference": reference,
        "params": {"train": params, "evaluate": evaluate_params},
        "train": {
            k: train_record.get(k)
            for k in (
                "training_prior",
                "production_prior_estimate",
                "best_step",
                "select_metric",
                "best_value",
            )
        },
    }
    spec = common.finite_or_none(spec)
    spec[HASH_KEY] = content_hash(spec)
    return spec


def spec_shift(spec: dict[str, Any]) -> tuple[float, float] | None:
    shift = spec["prior_correction"]["shift"]
    return None if shift is None else (float(shift["from_prior"]), float(shift["to_prior"]))


def spec_calibration(spec: dict[str, Any]) -> cal.Calibration:
    """The recalibration after the prior correction; the identity for a format 1 bundle."""
    record = spec.get("calibration")
    if record is None:
        return cal.IDENTITY
    try:
        return cal.Calibration.from_dict(record)
    except ValueError as exc:  # e.g. knots that are not monotone
        raise ValueError(f"{SPEC_FILE}: calibration: {exc}") from exc


def reference_table(
    predictions: pd.DataFrame,
    *,
    prior: float,
    training_prior: float | None,
    calibration: cal.Calibration,
) -> pd.DataFrame:
    """reference.parquet's rows from evaluate's predictions; groups become integer codes.

    The codes keep which rows share an entity (the bootstrap resamples them whole)
    without putting entity names into the bundle.
    """
    uncal = (
        "probability_prior_corrected"
        if "probability_prior_corrected" in predictions.columns
        else "probability"
    )
    ref = quantify.reference_from_rows(
        predictions["split"].to_numpy(),
        predictions["group"].to_numpy(),
        predictions["label"].to_numpy(),
        predictions["weight"].to_numpy(np.float64),
        predictions[uncal].to_numpy(np.float64),
        prior=prior,
        training_prior=training_prior,
        calibration=calibration,
    )
    _, codes = np.unique(ref.group, return_inverse=True)
    return pd.DataFrame(
        {
            "split": ref.split,
            "group": codes.astype(np.int32),
            "label": ref.label.astype(np.int8),
            "weight": ref.weight,
            "fit_weight": ref.fit_weight,
            "probability": ref.probability,
        }
    )


def reference_bytes(table: pd.DataFrame) -> bytes:
    """reference.parquet as bytes (so its sha256 can go into the spec before writing)."""
    import io

    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False, compression="zstd")
    return buffer.getvalue()


def reference_record(table: pd.DataFrame, data: bytes) -> dict[str, Any]:
    dev_b = table["split"] == "dev_b"
    return {
        "file": REFERENCE_FILE,
        "sha256": hashlib.sha256(data).hexdigest(),
        "rows": int(len(table)),
        "dev_b_rows": int(dev_b.sum()),
        "dev_b_positives": int(table.loc[dev_b, "label"].sum()),
        "probability": "prior-corrected, before the recalibration",
    }


def check_against_predictions(spec: dict[str, Any], predictions: pd.DataFrame) -> dict[str, Any]:
    """Map evaluate's raw scores through the bundle; they must give evaluate's probabilities.

    Returns a summary; ValueError when any probability differs by more than
    ``PROBABILITY_TOLERANCE`` or any decision at the threshold differs.
    """
    for column in ("score", "probability"):
        if column not in predictions.columns:
            raise ValueError(f"predictions lack column {column!r}")
    if predictions.empty:
        raise ValueError("predictions are empty: nothing to check the prior correction against")
    scores = predictions["score"].to_numpy(np.float64)
    expected = predictions["probability"].to_numpy(np.float64)
    got = spec_calibration(spec).apply(
        priors.probability_at_prior(
            scores, beta=spec["prior_correction"]["beta"], shift=spec_shift(spec)
        )
    )
    diff = float(np.max(np.abs(got - expected)))
    threshold = spec["threshold"]["value"]
    disagree = int(np.sum((got >= threshold) != (expected >= threshold)))
    if diff > PROBABILITY_TOLERANCE or disagree:
        raise ValueError(
            f"the bundle's prior correction does not reproduce evaluate's probabilities "
            f"(max difference {diff:.3g}, {disagree} decisions differ); is evaluate stale?"
        )
    return {"examples": int(len(scores)), "max_abs_probability_difference": diff}


# ----------------------------------------------------------------------------- read and write


def write_bundle(
    target: str | Path,
    *,
    model_path: str | Path,
    spec: dict[str, Any],
    reference: bytes | None = None,
) -> None:
    """Replace ``target`` with the model, bundle.json and reference.parquet, atomically."""
    if file_sha256(model_path) != spec["model"]["sha256"]:
        raise ValueError(f"{model_path} changed since the spec was built")
    record = spec.get("reference")
    if (reference is None) != (record is None) or (
        reference is not None and hashlib.sha256(reference).hexdigest() != record["sha256"]
    ):
        raise ValueError("the reference bytes do not match the spec's reference record")
    with common.atomic_directory(target) as tmp:
        shutil.copyfile(model_path, tmp / MODEL_FILE)
        if reference is not None:
            (tmp / record["file"]).write_bytes(reference)
        common.write_json(tmp / SPEC_FILE, spec)


_MISSING = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_inside(bundle_dir: Path, ref: str) -> bool:
    """``ref`` names a file inside ``bundle_dir``: relative, no ``..`` out, no folder link out.

    The file itself may be a link (DVC's symlink and hardlink cache types make one);
    its bytes are checked against the spec's sha256 anyway.
    """
    if not ref or "\0" in ref or Path(ref).is_absolute():
        return False
    parts = Path(os.path.normpath(ref)).parts
    if not parts or parts[0] in (".", "..") or ref.endswith(("/", os.sep)):
        return False
    folder = bundle_dir.resolve()
    return (bundle_dir / ref).parent.resolve().is_relative_to(folder)


def _spec_rules(bundle_dir: Path) -> list[tuple[str, bool, Any, str]]:
    """(key path, optional, check, what is allowed) for every field scoring reads, parents first."""
    probability = lambda v: _is_number(v) and 0 < v < 1  # noqa: E731
    return [
        ("model", False, lambda v: isinstance(v, dict), "an object with file and sha256"),
        (
            "model.file",
            False,
            lambda v: isinstance(v, str) and _is_inside(bundle_dir, v),
            f"a relative path to a file inside the bundle folder {bundle_dir} "
            f"(the bundle stage writes {MODEL_FILE!r})",
        ),
        (
            "model.sha256",
            False,
            lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
            "the model file's sha256 as 64 lowercase hex digits",
        ),
        ("dim", False, lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        ("dtype", False, lambda v: v in contract.DTYPES, f"one of {sorted(contract.DTYPES)}"),
        ("max_abs", False, lambda v: _is_number(v) and v > 0, "a finite number > 0"),
        ("min_rows", True, lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        ("prior_correction", False, lambda v: isinstance(v, dict), "an object with beta, shift"),
        ("prior_correction.beta", False, lambda v: _is_number(v) and v > 0, "a finite number > 0"),
        (
            "prior_correction.shift",
            False,
            lambda v: v is None or isinstance(v, dict),
            "null or an object with from_prior and to_prior",
        ),
        ("prior_correction.shift.from_prior", False, probability, "a number in (0, 1)"),
        ("prior_correction.shift.to_prior", False, probability, "a number in (0, 1)"),
        ("threshold", False, lambda v: isinstance(v, dict), "an object with value"),
        (
            "threshold.value",
            False,
            lambda v: _is_number(v) and v >= 0,
            "a finite number >= 0 (the probability threshold; above 1 flags nothing)",
        ),
        (
            "cost",
            False,
            lambda v: isinstance(v, dict),
            "an object with false_positive and false_negative",
        ),
        ("cost.false_positive", False, lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
        ("cost.false_negative", False, lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    ]


def _spec_rules_v2(bundle_dir: Path) -> list[tuple[str, bool, Any, str]]:
    """The fields format 2 adds: the recalibration and the labelled reference."""
    return [
        (
            "calibration",
            False,
            lambda v: isinstance(v, dict),
            "an object with method, fitted_on, slope, intercept, offset",
        ),
        ("calibration.method", False, lambda v: v in cal.METHODS, f"one of {list(cal.METHODS)}"),
        (
            "calibration.fitted_on",
            False,
            lambda v: v is None or v in cal.FIT_SPLITS,
            f"null or one of {list(cal.FIT_SPLITS)}",
        ),
        ("calibration.slope", False, lambda v: _is_number(v) and v > 0, "a finite number > 0"),
        ("calibration.intercept", False, _is_number, "a finite number"),
        ("calibration.offset", False, _is_number, "a finite number"),
        (
            "calibration.knots_x",
            True,
            lambda v: isinstance(v, list) and all(_is_number(x) for x in v),
            "a list of finite numbers (isotonic: the log-odds knots)",
        ),
        (
            "calibration.knots_y",
            True,
            lambda v: isinstance(v, list) and all(_is_number(x) and 0 <= x <= 1 for x in v),
            "a list of probabilities (isotonic: the calibrated value at each knot)",
        ),
        (
            "reference",
            False,
            lambda v: v is None or isinstance(v, dict),
            f"null or an object with file and sha256 (the bundle stage writes {REFERENCE_FILE!r})",
        ),
        (
            "reference.file",
            False,
            lambda v: isinstance(v, str) and _is_inside(bundle_dir, v),
            f"a relative path to a file inside the bundle folder {bundle_dir}",
        ),
        (
            "reference.sha256",
            False,
            lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
            "the reference file's sha256 as 64 lowercase hex digits",
        ),
    ]


def validate_spec(spec: Any, path: Path, bundle_dir: Path) -> None:
    """ValueError naming ``path``, the field's key path, its value and what is allowed.

    Checks every field that loading and scoring read, so a hand-edited or damaged
    bundle.json fails here with one line instead of a ``KeyError`` or a wrong score.
    A child is checked only when its parent is present (``prior_correction.shift``
    may be null).
    """
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: must be a JSON object, got {type(spec).__name__}")
    rules = _spec_rules(bundle_dir)
    if spec.get("format_version", FORMAT_VERSION) >= 2:
        rules += _spec_rules_v2(bundle_dir)
    for key, optional, check, allowed in rules:
        *parents, name = key.split(".")
        node: Any = spec
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue  # the parent is null where null is allowed (shift), else already refused
        value = node.get(name, _MISSING)
        if value is _MISSING:
            if optional:
                continue
            raise ValueError(f"{path}: {key} is missing; it must be {allowed}")
        if not check(value):
            raise ValueError(f"{path}: {key} is {value!r}; it must be {allowed}")


def read_spec(bundle_dir: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """bundle.json, checked: JSON, format version, every field scoring reads (``validate_spec``),
    content hash, and the model file's sha256.
    """
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / SPEC_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{bundle_dir} is not a model bundle (no {SPEC_FILE}); build it with the bundle "
            "stage or fetch it with `dvc pull` of the bundle folder"
        )
    try:
        spec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{path}: not valid JSON ({exc}); rebuild the bundle with the bundle stage or "
            "fetch it again with `dvc pull`"
        ) from exc
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: must be a JSON object, got {type(spec).__name__}")
    version = spec.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise ValueError(
            f"{path}: format_version {version!r} is not supported; this code reads "
            f"{' or '.join(map(str, READABLE_VERSIONS))}"
        )
    validate_spec(spec, path, bundle_dir)
    if verify:
        if spec.get(HASH_KEY) != content_hash(spec):
            raise ValueError(f"{path}: content hash does not match; the bundle was edited")
        model = bundle_dir / spec["model"]["file"]
        if not model.is_file() or file_sha256(model) != spec["model"]["sha256"]:
            raise ValueError(f"{model}: missing or not the model this bundle was built with")
        record = spec.get("reference")
        if record is not None:
            ref = bundle_dir / record["file"]
            if not ref.is_file() or file_sha256(ref) != record["sha256"]:
                raise ValueError(f"{ref}: missing or not the reference this bundle was built with")
    return spec


@dataclass
class Bundle:
    """A loaded bundle: its spec and the Keras model."""

    path: Path
    spec: dict[str, Any]
    model: Any

    @property
    def dim(self) -> int:
        return int(self.spec["dim"])

    @property
    def threshold(self) -> float:
        return float(self.spec["threshold"]["value"])

    @property
    def prior(self) -> float:
        return float(self.spec["production_prior"])

    @property
    def calibration(self) -> cal.Calibration:
        return spec_calibration(self.spec)

    def prior_corrected(self, scores: np.ndarray) -> np.ndarray:
        """Raw scores -> probabilities at the prior, before the recalibration."""
        return priors.probability_at_prior(
            scores, beta=self.spec["prior_correction"]["beta"], shift=spec_shift(self.spec)
        )

    def probability(self, scores: np.ndarray) -> np.ndarray:
        """Raw scores -> calibrated probabilities at the prior (what the threshold applies to)."""
        return self.calibration.apply(self.prior_corrected(scores))

    def reference(self) -> quantify.Reference | None:
        """dev_b's labelled rows (reference.parquet), or None for a bundle without them."""
        record = self.spec.get("reference")
        if record is None:
            return None
        path = self.path / record["file"]
        table = pd.read_parquet(path)
        missing = sorted(set(REFERENCE_COLUMNS) - set(table.columns))
        if missing:
            raise ValueError(f"{path}: lacks columns {missing}; it needs {list(REFERENCE_COLUMNS)}")
        return quantify.Reference(
            split=table["split"].astype(str).to_numpy(),
            group=table["group"].to_numpy(),
            label=table["label"].to_numpy().astype(np.int8),
            weight=table["weight"].to_numpy(np.float64),
            fit_weight=table["fit_weight"].to_numpy(np.float64),
            probability=table["probability"].to_numpy(np.float64),
        )


def load_model(path: str | Path):
    """Load a ``.keras`` file in safe mode: registered layers only, no Lambda, no pickles."""
    common.quiet_tensorflow()
    import keras

    import dsprior.cnn  # noqa: F401  registers the custom layers (package "stages")

    return keras.saving.load_model(path, safe_mode=True, compile=False)


def model_dim(model) -> int:
    """Feature dimension of the model's ``features`` input."""
    from dsprior.cnn import FEATURES_INPUT

    inputs = model.input if isinstance(model.input, dict) else {FEATURES_INPUT: model.input}
    return int(inputs[FEATURES_INPUT].shape[-1])


def load_bundle(bundle_dir: str | Path) -> Bundle:
    """Read and verify a bundle, then load its model in safe mode."""
    spec = read_spec(bundle_dir)
    model = load_model(Path(bundle_dir) / spec["model"]["file"])
    if model_dim(model) != int(spec["dim"]):
        raise ValueError(
            f"{bundle_dir}: the model takes dim {model_dim(model)} but bundle.json says {spec['dim']}"
        )
    return Bundle(Path(bundle_dir), spec, model)


# ----------------------------------------------------------------------------- stage


def dataset_dtype(dataset_dir: str | Path) -> str:
    schema = pq.read_schema(contract.shard_paths(dataset_dir)[0])
    return schema.metadata[b"dtype"].decode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True, help="for its dim and dtype only")
    parser.add_argument("--metrics", type=Path, required=True, help="evaluate's metrics.json")
    parser.add_argument("--predictions", type=Path, required=True, help="evaluate's predictions")
    parser.add_argument("--out", type=Path, required=True, help="bundle folder")
    args = parser.parse_args(argv)
    common.setup_logging()

    evaluate_params = copy.deepcopy(common.load_params(args.params, "evaluate"))
    train_record = json.loads((args.model_dir / "train.json").read_text())
    metrics = json.loads(args.metrics.read_text())
    model_path = args.model_dir / MODEL_FILE
    predictions = pd.read_parquet(args.predictions)
    calibration_record = metrics.get("calibration") or {}
    table = reference_table(
        predictions,
        prior=float(metrics["prior"]),
        training_prior=calibration_record.get("training_prior", train_record.get("training_prior")),
        calibration=cal.Calibration.from_dict(calibration_record.get("chosen", {})),
    )
    reference = reference_bytes(table)
    spec = build_spec(
        train_record=train_record,
        metrics=metrics,
        evaluate_params=evaluate_params,
        dataset_dim=contract.dataset_dim(args.dataset),
        dataset_dtype=dataset_dtype(args.dataset),
        model_sha256=file_sha256(model_path),
        reference=reference_record(table, reference),
    )
    checked = check_against_predictions(spec, predictions)
    model = load_model(model_path)
    if model_dim(model) != spec["dim"]:
        raise ValueError(
            f"{model_path} takes dim {model_dim(model)}, the dataset has {spec['dim']}"
        )
    write_bundle(args.out, model_path=model_path, spec=spec, reference=reference)
    logger.info(
        "wrote %s: dim %d, beta %.5g, shift %s, threshold %.5g on %s (checked on %d predictions)",
        args.out,
        spec["dim"],
        spec["prior_correction"]["beta"],
        spec["prior_correction"]["shift"],
        spec["threshold"]["value"],
        THRESHOLD_APPLIES_TO,
        checked["examples"],
    )


if __name__ == "__main__":
    common.run_main(main)
