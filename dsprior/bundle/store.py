"""Writing a bundle folder, and reading it back: verified, with its model loaded in safe mode.

``write_bundle`` replaces the folder atomically; ``read_spec`` checks bundle.json (its
fields, its content hash, and the sha256 of every file it names); ``load_bundle``
then loads the model and returns a :class:`Bundle`, which maps the model's log-odds to the
calibrated log-odds and probabilities its threshold applies to. A bundle of an earlier
format loads and scores the same way; ``Bundle.notes`` says what it lacks, and loading
logs it as a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsprior import calibration as cal
from dsprior import modeldir, priors, quantify, runtime
from dsprior.bundle.reference import read_reference
from dsprior.bundle.spec import (
    HASH_KEY,
    READABLE_VERSIONS,
    SPEC_FILE,
    BundleSpec,
    content_hash,
    format_notes,
    model_file_record,
    spec_calibration,
    spec_shift,
    spec_threshold_logit,
)
from dsprior.bundle.validate import validate_spec
from dsprior.external import is_external_spec, refuse_external_bundle

logger = logging.getLogger(__name__)


def write_bundle(
    target: str | Path,
    *,
    model_path: str | Path | None,
    spec: BundleSpec,
    reference: bytes | None = None,
) -> None:
    """Replace ``target`` with the model, bundle.json and reference.parquet, atomically.

    ``model_path`` None: a bundle of external scores, which holds no model.
    """
    if (model_path is None) != is_external_spec(spec):
        raise ValueError("a bundle holds a model file unless it was built from external scores")
    if model_path is not None and runtime.file_sha256(model_path) != spec["model"]["sha256"]:
        raise ValueError(f"{model_path} changed since the spec was built")
    record = spec.get("reference")
    if (reference is None) != (record is None) or (
        reference is not None
        and record is not None
        and hashlib.sha256(reference).hexdigest() != record["sha256"]
    ):
        raise ValueError("the reference bytes do not match the spec's reference record")
    with runtime.atomic_directory(target) as tmp:
        if model_path is not None:
            record_of_model = model_file_record(spec)
            assert record_of_model is not None  # a model file goes with its record
            shutil.copyfile(model_path, tmp / record_of_model["file"])
        if reference is not None and record is not None:  # both or neither, checked above
            (tmp / record["file"]).write_bytes(reference)
        runtime.write_json(tmp / SPEC_FILE, spec)


def _read_spec_json(bundle_dir: Path) -> Any:
    """bundle.json parsed; FileNotFoundError or ValueError saying how to get a good one."""
    path = bundle_dir / SPEC_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{bundle_dir} is not a model bundle (no {SPEC_FILE}); build it with the bundle "
            "stage or fetch it with `dvc pull` of the bundle folder"
        )
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{path}: not valid JSON ({exc}); rebuild the bundle with the bundle stage or "
            "fetch it again with `dvc pull`"
        ) from exc


def _check_version(spec: Any, path: Path) -> None:
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: must be a JSON object, got {type(spec).__name__}")
    version = spec.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise ValueError(
            f"{path}: format_version {version!r} is not supported; this code reads "
            f"{' or '.join(map(str, READABLE_VERSIONS))}"
        )


def verify_contents(spec: BundleSpec, bundle_dir: Path) -> None:
    """ValueError unless the content hash matches and every named file has its sha256."""
    path = bundle_dir / SPEC_FILE
    if spec.get(HASH_KEY) != content_hash(spec):
        raise ValueError(f"{path}: content hash does not match; the bundle was edited")
    model_record = model_file_record(spec)
    if model_record is not None:  # a bundle of external scores holds no model file
        model = bundle_dir / model_record["file"]
        if not model.is_file() or runtime.file_sha256(model) != model_record["sha256"]:
            raise ValueError(f"{model}: missing or not the model this bundle was built with")
    record = spec.get("reference")
    if record is not None:
        ref = bundle_dir / record["file"]
        if not ref.is_file() or runtime.file_sha256(ref) != record["sha256"]:
            raise ValueError(f"{ref}: missing or not the reference this bundle was built with")


def read_spec(bundle_dir: str | Path, *, verify: bool = True) -> BundleSpec:
    """bundle.json, checked: JSON, format version, every field scoring reads (``validate_spec``),
    content hash, and the model file's sha256.
    """
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / SPEC_FILE
    spec = _read_spec_json(bundle_dir)
    _check_version(spec, path)
    validate_spec(spec, path, bundle_dir)
    if verify:
        verify_contents(spec, bundle_dir)
    return spec


@dataclass
class Bundle:
    """A loaded bundle: its spec and the Keras model."""

    path: Path
    spec: BundleSpec
    model: Any

    @property
    def dim(self) -> int:
        return int(self.spec["dim"])

    @property
    def threshold(self) -> float:
        """The threshold as a probability, for people."""
        return float(self.spec["threshold"]["value"])

    @property
    def threshold_logit(self) -> float:
        """The log-odds decisions compare (``spec_threshold_logit``)."""
        return spec_threshold_logit(self.spec)

    @property
    def prior(self) -> float:
        return float(self.spec["production_prior"])

    @property
    def calibration(self) -> cal.Calibration:
        return spec_calibration(self.spec)

    @property
    def costs(self) -> priors.Costs:
        """The costs the threshold minimises (``evaluate.cost``)."""
        cost = self.spec["cost"]
        return priors.Costs(float(cost["false_positive"]), float(cost["false_negative"]))

    @property
    def notes(self) -> list[str]:
        """What this bundle lacks, being of an earlier format (``format_notes``)."""
        return format_notes(self.spec)

    def corrected_log_odds(self, logits: np.ndarray) -> np.ndarray:
        """The model's log-odds -> log-odds at the prior, before the recalibration."""
        return priors.log_odds_at_prior(
            logits, beta=self.spec["prior_correction"]["beta"], shift=spec_shift(self.spec)
        )

    def log_odds(self, logits: np.ndarray) -> np.ndarray:
        """The model's log-odds -> calibrated log-odds at the prior (what decisions compare)."""
        return self.calibration.map_log_odds(self.corrected_log_odds(logits))

    def prior_corrected(self, logits: np.ndarray) -> np.ndarray:
        """The model's log-odds -> probabilities at the prior, before the recalibration."""
        return priors.sigmoid(self.corrected_log_odds(logits))

    def probability(self, logits: np.ndarray) -> np.ndarray:
        """The model's log-odds -> calibrated probabilities at the prior."""
        return self.calibration.probability(self.corrected_log_odds(logits))

    def decide(self, logits: np.ndarray) -> np.ndarray:
        """int8 decisions: 1 where the calibrated log-odds reach the threshold's log-odds."""
        return (self.log_odds(logits) >= self.threshold_logit).astype(np.int8)

    def reference(self) -> quantify.Reference | None:
        """dev_b's labelled rows (reference.parquet), or None for a bundle without them."""
        record = self.spec.get("reference")
        if record is None:
            return None
        return read_reference(self.path / record["file"])


def load_bundle_spec(bundle_dir: str | Path) -> Bundle:
    """Read and verify a bundle without loading a model (``model`` None): all that maps log-odds
    to probabilities and decisions and estimates a batch without labels. No TensorFlow."""
    loaded = Bundle(Path(bundle_dir), read_spec(bundle_dir), None)
    for note in loaded.notes:
        logger.warning("%s: %s", bundle_dir, note)
    return loaded


def load_bundle(bundle_dir: str | Path) -> Bundle:
    """Read and verify a bundle, then load its model in safe mode.

    Imports TensorFlow for the CNN (``model.keras``): the entry point sets it up first
    (``runtime.quiet_tensorflow``, oneDNN); the pooled logistic baseline needs none. A bundle
    of external scores holds no model: ValueError saying so (use ``load_bundle_spec`` and the
    scores of your own model).
    """
    spec = read_spec(bundle_dir)
    refuse_external_bundle(bundle_dir, spec)
    record = model_file_record(spec)
    assert record is not None  # refuse_external_bundle refused the others
    model = modeldir.load_model(Path(bundle_dir) / record["file"])
    if modeldir.model_dim(model) != int(spec["dim"]):
        raise ValueError(
            f"{bundle_dir}: the model takes dim {modeldir.model_dim(model)} but bundle.json "
            f"says {spec['dim']}"
        )
    loaded = Bundle(Path(bundle_dir), spec, model)
    for note in loaded.notes:
        logger.warning("%s: %s", bundle_dir, note)
    return loaded
