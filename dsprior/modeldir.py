"""The model folder (``paths.model_dir``): what train writes and evaluate and bundle read.

The model file depends on ``train.model``: ``model.keras`` for the CNN (``cnn.save_model``
writes it, ``cnn.load_model`` reads it), ``pooled_logistic.json`` for the baseline
(``pooled_logistic.save_model`` / ``load_model``, JSON, no pickle). ``TRAIN_RECORD`` is
what training knew that scoring needs (dim, beta, the training prior, sampling rates,
params, the compute it ran in), declared as ``TrainRecord`` and written and read only
here; its ``model`` key (or ``params.model``) names the kind
(absent: the CNN, as records written before the baseline existed). This module imports no TensorFlow, so an
entry point can read the record before it sets TensorFlow up; ``load_model`` imports it
for the CNN only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, NotRequired, TypedDict

from dsprior import runtime
from dsprior.hardware import ComputeRecord

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


class RateRange(TypedDict):
    """The range of one source's sampling rates over its training rows."""

    upstream_rate_min: Annotated[float, "smallest upstream negative rate (thinning before us)"]
    upstream_rate_max: Annotated[float, "largest upstream negative rate"]
    downsample_rate_min: Annotated[float, "smallest downsample keep rate (the downsample stage)"]
    downsample_rate_max: Annotated[float, "largest downsample keep rate"]


class SamplingRecord(TypedDict):
    """How the training rows were sampled and weighted."""

    balance: Annotated[str, "train.balance: downsample or weighted"]
    loss_weight: Annotated[str | None, "train.loss_weight under balance weighted, else null"]
    rates_by_source: Annotated[dict[str, RateRange], "per source: its rates' range"]
    train_examples: Annotated[int, "training rows"]
    train_positives: Annotated[int, "training rows with label 1"]


class DistributionRecord(TypedDict):
    """How training was spread over devices and workers (``dsprior.training.strategy``)."""

    strategy: Annotated[str, "train.strategy: default, mirrored or multi_worker"]
    replicas: Annotated[int, "model replicas in sync"]
    workers: Annotated[int, "worker processes"]
    input_shards: Annotated[int, "parts each global batch is read in"]
    global_batch: Annotated[int, "examples per step, all replicas together (train.batch_size)"]
    replica_batch: Annotated[int, "examples per step on one replica"]
    chief: Annotated[bool, "whether the worker that wrote this record is the chief"]


class ExternalScoresRecord(TypedDict):
    """What train read where the scores were made outside the pipeline (``dsprior.external``)."""

    name: Annotated[str, "the scores' name in train.external_scores"]
    path: Annotated[str, "the scores file"]
    column: Annotated[str, "its score column"]
    scale: Annotated[str, "log_odds or probability"]
    trained_at: Annotated[Any, "the prior the scoring model was trained at (or its beta)"]
    sha256: Annotated[str, "the file's sha256"]
    examples: Annotated[int, "examples it scores"]
    file: Annotated[str, "the checked log-odds in the model folder"]
    production_prior_estimate: Annotated[float, "the manifest's production prior estimate"]


class DevEvaluationsRecord(TypedDict):
    """train.json's ``dev_a_evaluations``: the evaluations during training (train.eval_sample)."""

    examples: Annotated[int, "dev_a's examples"]
    sample_examples: Annotated[
        int | None, "the evaluation sample's examples; null: all of dev_a at every evaluation"
    ]
    sample: Annotated[int, "evaluations that scored the sample"]
    whole: Annotated[int, "evaluations that scored all of dev_a (the decisions)"]


class TrainRecord(TypedDict):
    """train.json. A folder of external scores (``external_scores``) lacks the keys of a
    training run (sampling, distribution, compute, steps)."""

    dim: Annotated[int, "feature dimension the model reads"]
    beta: Annotated[float, "effective negative keep rate: the prior correction's beta"]
    training_prior: Annotated[
        float | None, "positive share of the training rows under the loss weights"
    ]
    production_prior_estimate: Annotated[
        float | None, "positive share of the training rows under the manifest weights"
    ]
    params: Annotated[dict[str, Any], "the train section of params.yaml, as checked"]
    sampling: NotRequired[Annotated[SamplingRecord, "how the training rows were sampled"]]
    distribution: NotRequired[Annotated[DistributionRecord, "how training was distributed"]]
    compute: NotRequired[Annotated[ComputeRecord, "precision and oneDNN, and why"]]
    min_rows: Annotated[int, "rows an example is padded to at least (the widest filter)"]
    steps: NotRequired[Annotated[int, "optimizer steps in the whole run"]]
    steps_per_epoch: NotRequired[Annotated[int, "steps in one pass over the training rows"]]
    resumed_from_step: NotRequired[
        Annotated[int, "the step a backup resumed from; 0 for a fresh run"]
    ]
    best_step: Annotated[int | None, "the step whose weights were kept (best on dev_a)"]
    select_metric: Annotated[str | None, "the dev_a metric at the prior that picked best_step"]
    best_value: Annotated[float | None, "select_metric's value at best_step"]
    dev_a_evaluations: NotRequired[
        Annotated[DevEvaluationsRecord, "how often dev_a was scored during training"]
    ]
    external_scores: NotRequired[
        Annotated[ExternalScoresRecord, "the scores file read instead of training a model"]
    ]
    model: NotRequired[Annotated[str, "train.model where it is not the CNN: pooled_logistic"]]
    dev_a: NotRequired[
        Annotated[dict[str, dict[str, float]], "the baseline's dev_a scores, per view"]
    ]


def write_train_record(model_dir: str | Path, record: TrainRecord) -> None:
    """Write ``record`` as the model folder's train.json."""
    runtime.write_json(Path(model_dir) / TRAIN_RECORD, record)


def read_train_record(model_dir: str | Path) -> TrainRecord:
    """The train record of a model folder."""
    record: TrainRecord = json.loads((Path(model_dir) / TRAIN_RECORD).read_text())
    return record


def model_kind(train_record: Mapping[str, Any]) -> str:
    """The record's ``train.model``: ``cnn`` or ``pooled_logistic``."""
    kind = train_record.get("model") or train_record.get("params", {}).get("model", "cnn")
    if kind not in MODEL_FILES:
        raise ValueError(f"train.json: model {kind!r} is not one of {list(MODEL_FILES)}")
    return kind


def model_file(train_record: Mapping[str, Any]) -> str:
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
    from dsprior import runtime

    runtime.quiet_tensorflow()  # before dsprior.cnn, which imports TensorFlow
    from dsprior import cnn

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
