"""The model folder (``paths.model_dir``): what train writes and evaluate and bundle read.

The model file depends on ``train.model``: ``model.keras`` for the CNN (``cnn.save_model``
writes it, ``cnn.load_model`` reads it), ``pooled_logistic.json`` for the baseline
(``pooled_logistic.save_model`` / ``load_model``, JSON, no pickle). ``TRAIN_RECORD`` is
what training knew that scoring needs (dim, beta, the training prior, sampling rates,
params, the compute it ran in); its ``model`` key (or ``params.model``) names the kind
(absent: the CNN, as records written before the baseline existed). This module imports no TensorFlow, so an
entry point can read the record before it sets TensorFlow up; ``load_model`` imports it
for the CNN only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_FILE = "model.keras"  # the CNN's
TRAIN_RECORD = "train.json"
# train.model -> (model file, its format as bundle.json names it, how it loads)
MODEL_FILES = {
    "cnn": (
        MODEL_FILE,
        "keras",
        "keras.saving.load_model(path, safe_mode=True) after importing dsprior.cnn",
    ),
    "pooled_logistic": (
        "pooled_logistic.json",
        "json",
        "dsprior.pooled_logistic.load_model(path): JSON coefficients, no pickle",
    ),
}


def read_train_record(model_dir: str | Path) -> dict[str, Any]:
    """The train record of a model folder."""
    return json.loads((Path(model_dir) / TRAIN_RECORD).read_text())


def model_kind(train_record: dict[str, Any]) -> str:
    """The record's ``train.model``: ``cnn`` or ``pooled_logistic``."""
    kind = train_record.get("model") or train_record.get("params", {}).get("model", "cnn")
    if kind not in MODEL_FILES:
        raise ValueError(f"train.json: model {kind!r} is not one of {list(MODEL_FILES)}")
    return kind


def model_file(train_record: dict[str, Any]) -> str:
    """The model's file name in the model folder (and in the bundle)."""
    return MODEL_FILES[model_kind(train_record)][0]


def kind_of_file(path: str | Path) -> str:
    """The kind of model a file holds, from its name; ValueError for an unknown name."""
    name = Path(path).name
    for kind, (file, _, _) in MODEL_FILES.items():
        if name == file:
            return kind
    known = [file for file, _, _ in MODEL_FILES.values()]
    raise ValueError(f"{path}: not a model file this code reads ({known})")


def load_model(path: str | Path) -> Any:
    """The model in ``path``: the pooled logistic baseline (no TensorFlow) or the CNN, loaded
    in safe mode (imports TensorFlow; the entry point sets it up first)."""
    if kind_of_file(path) == "pooled_logistic":
        from dsprior import pooled_logistic

        return pooled_logistic.load_model(path)
    from dsprior import cnn, runtime

    runtime.quiet_tensorflow()
    return cnn.load_model(path)


def model_dim(model: Any) -> int:
    """The feature dimension a loaded model takes."""
    dim = getattr(model, "dim", None)
    if isinstance(dim, int):
        return dim
    from dsprior import cnn

    return cnn.model_dim(model)


def is_keras(model: Any) -> bool:
    """Whether a loaded model is the CNN (a Keras model), which needs TensorFlow to score."""
    return not callable(getattr(model, "forward_log_odds", None))
